#include "services/deployer/host/safe_path.h"

#include <limits.h>
#include <stdlib.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>
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

absl::Status CheckRelativePath(const std::string& relative, const std::string& field) {
  auto refuse = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": \"", relative, "\" ", why));
  };
  if (relative.empty()) return refuse("is empty");
  if (relative[0] == '/') return refuse("is absolute; paths are relative to the environment's root");
  if (relative.find('\0') != std::string::npos) return refuse("contains a NUL byte");
  std::vector<absl::string_view> parts = absl::StrSplit(relative, '/', absl::SkipEmpty());
  for (absl::string_view p : parts) {
    if (p == "..") return refuse("contains \"..\"");
  }
  if (parts.empty() || parts.back() == ".") return refuse("does not name a file");
  return absl::OkStatus();
}

absl::StatusOr<std::string> ResolveUnderRoot(const std::string& root, const std::string& relative,
                                             const std::string& field, bool create_parents) {
  auto refuse = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": \"", relative, "\" ", why));
  };
  if (absl::Status lexical = CheckRelativePath(relative, field); !lexical.ok()) return lexical;
  std::vector<std::string> parts = absl::StrSplit(relative, '/', absl::SkipEmpty());
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

namespace ferry::deployer::host {
namespace {

bool WithinRoot(const std::string& real_root, const std::string& real) {
  return real == real_root || real_root == "/" || absl::StartsWith(real, real_root + "/");
}

// Opens `part` in the directory `dir_fd`. openat2(RESOLVE_BENEATH) from the
// directory first: the kernel refuses any escape. It also refuses absolute
// symlinks, even ones pointing back inside the root (EXDEV), and may be
// missing (ENOSYS): then openat following symlinks. Either way the caller
// checks where the descriptor really is before using it.
int OpenComponent(int dir_fd, const std::string& part) {
  struct open_how how = {};
  how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  int fd = static_cast<int>(syscall(SYS_openat2, dir_fd, part.c_str(), &how, sizeof how));
  if (fd >= 0 || (errno != ENOSYS && errno != EXDEV)) return fd;
  return openat(dir_fd, part.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

}  // namespace

absl::StatusOr<int> OpenDirBeneath(const std::string& root, const std::string& relative_dir, const std::string& field,
                                   bool create, std::string* real_path) {
  int root_fd = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) return absl::InternalError(absl::StrCat("open environment root ", root, ": ", strerror(errno)));
  std::string real_root = PathOfFd(root_fd);
  std::string real = real_root;  // where `cur` is
  int cur = root_fd;
  std::string prefix;
  auto fail = [&](absl::Status st) {
    close(cur);
    return st;
  };
  for (const absl::string_view view : absl::StrSplit(relative_dir, '/', absl::SkipEmpty())) {
    std::string part(view);
    if (part == ".") continue;
    if (part == "..") return fail(absl::InvalidArgumentError(absl::StrCat(field, ": \"", relative_dir, "\" contains \"..\"")));
    prefix = prefix.empty() ? part : absl::StrCat(prefix, "/", part);
    int next = OpenComponent(cur, part);
    if (next < 0 && errno == ENOENT && create) {
      if (mkdirat(cur, part.c_str(), 0755) != 0 && errno != EEXIST) {
        return fail(absl::InternalError(absl::StrCat("mkdir ", root, "/", prefix, ": ", strerror(errno))));
      }
      next = OpenComponent(cur, part);
    }
    if (next < 0) {
      if (errno == ENOENT) {
        return fail(absl::NotFoundError(absl::StrCat(field, ": \"", relative_dir, "\": ", prefix, " does not exist")));
      }
      if (errno == ENOTDIR) {
        return fail(absl::InvalidArgumentError(
            absl::StrCat(field, ": \"", relative_dir, "\" has a non-directory component ", prefix)));
      }
      return fail(absl::InternalError(absl::StrCat("open ", root, "/", prefix, ": ", strerror(errno))));
    }
    close(cur);
    cur = next;
    // Where the descriptor really is: a symlink followed (or a directory
    // renamed meanwhile) must have left it beneath the root.
    real = PathOfFd(cur);
    if (real_root.empty() || real.empty() || !WithinRoot(real_root, real)) {
      return fail(absl::InvalidArgumentError(
          absl::StrCat(field, ": \"", relative_dir, "\" goes through a symlink that escapes the root")));
    }
  }
  if (real_path != nullptr) *real_path = std::move(real);
  return cur;
}

std::string PathOfFd(int fd) {
  char buf[PATH_MAX];
  ssize_t n = readlink(absl::StrCat("/proc/self/fd/", fd).c_str(), buf, sizeof buf - 1);
  if (n <= 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace ferry::deployer::host
