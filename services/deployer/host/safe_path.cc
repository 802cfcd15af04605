#include "services/deployer/host/safe_path.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace ferry::deployer::host {
namespace {

std::string RealPath(const std::string& p) {
  char buf[PATH_MAX];
  if (realpath(p.c_str(), buf) == nullptr) return "";
  return buf;
}

bool Within(const std::string& real_root, const std::string& real) {
  return real == real_root || absl::StartsWith(real, real_root + "/");
}

}  // namespace

absl::StatusOr<std::string> ResolveUnderRoot(const std::string& root, const std::string& relative,
                                             const std::string& field, bool create_parents) {
  auto refuse = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": \"", relative, "\" ", why));
  };
  if (relative.empty()) return refuse("is empty");
  if (relative[0] == '/') return refuse("is absolute; paths are relative to the environment's root");
  if (relative.find('\0') != std::string::npos) return refuse("contains a NUL byte");
  std::vector<std::string> parts = absl::StrSplit(relative, '/', absl::SkipEmpty());
  for (const std::string& p : parts) {
    if (p == "..") return refuse("contains \"..\"");
  }
  if (parts.empty() || parts.back() == ".") return refuse("does not name a file");
  std::string real_root = RealPath(root);
  if (real_root.empty()) {
    if (!create_parents) return root + "/" + relative;  // Root not created yet: nothing can escape it.
    return absl::FailedPreconditionError(absl::StrCat("environment root ", root, " does not exist"));
  }
  std::string cur = real_root;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i] == ".") continue;
    cur += "/" + parts[i];
    struct stat st;
    if (lstat(cur.c_str(), &st) != 0) {
      if (errno != ENOENT) return refuse(absl::StrCat("cannot be checked: ", strerror(errno)));
      if (i + 1 < parts.size() && create_parents) {
        if (mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) {
          return absl::InternalError(absl::StrCat("mkdir ", cur, ": ", strerror(errno)));
        }
        if (lstat(cur.c_str(), &st) != 0 || S_ISLNK(st.st_mode)) return refuse("changed while being created");
      }
      continue;
    }
    if (S_ISLNK(st.st_mode)) {
      std::string real = RealPath(cur);
      if (real.empty() || !Within(real_root, real)) return refuse("goes through a symlink that escapes the root");
      if (i + 1 < parts.size()) cur = real;
    } else if (i + 1 < parts.size() && !S_ISDIR(st.st_mode)) {
      return refuse(absl::StrCat("has a non-directory component ", cur));
    }
  }
  return cur;
}

}  // namespace ferry::deployer::host
