#include "services/deployer/host/root_policy.h"

#include <limits.h>
#include <stdlib.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ferry::deployer::host {
namespace {

namespace fs = std::filesystem;

bool Within(const std::string& base, const std::string& p) {
  return p == base || base == "/" || absl::StartsWith(p, base + "/");
}

}  // namespace

std::string ResolveExisting(const std::string& path) {
  fs::path p = fs::path(path).lexically_normal();
  std::vector<std::string> missing;
  fs::path cur = p;
  while (true) {
    char buf[PATH_MAX];
    if (realpath(cur.c_str(), buf) != nullptr) {
      fs::path out(buf);
      for (auto it = missing.rbegin(); it != missing.rend(); ++it) out /= *it;
      std::string s = out.lexically_normal().string();
      while (s.size() > 1 && s.back() == '/') s.pop_back();
      return s;
    }
    if (!cur.has_relative_path()) return p.string();
    if (!cur.filename().empty()) missing.push_back(cur.filename().string());
    cur = cur.parent_path();
  }
}

RootPolicy::RootPolicy(std::vector<std::string> allowed) {
  for (const std::string& a : allowed) {
    if (!a.empty()) allowed_.push_back(ResolveExisting(a));
  }
}

absl::StatusOr<std::string> RootPolicy::Check(const std::string& root_dir) const {
  auto refuse = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("target.host.root_dir: \"", root_dir, "\" ", why));
  };
  if (root_dir.empty() || root_dir[0] != '/') return refuse("must be an absolute path");
  if (root_dir.find('\0') != std::string::npos) return refuse("contains a NUL byte");
  for (const fs::path& part : fs::path(root_dir)) {
    if (part == "..") return refuse("contains \"..\"");
  }
  std::string real = ResolveExisting(root_dir);
  if (real == "/") return refuse("resolves to / (the whole machine); an environment needs a directory of its own");
  fs::path prev;
  for (const fs::path& part : fs::path(real)) {
    if (prev == ".ferry" && part == "run") {
      return refuse(absl::StrCat("resolves to ", real, ", inside an environment's Ferry state (.ferry/run)"));
    }
    prev = part;
  }
  if (allowed_.empty()) return real;
  for (const std::string& a : allowed_) {
    if (Within(a, real)) return real;
  }
  return refuse(absl::StrCat("resolves to ", real, ", which is not beneath any of the deployer's --allowed-roots (",
                             absl::StrJoin(allowed_, ","), ")"));
}

}  // namespace ferry::deployer::host
