// Fuzz target: the path checks on paths from Git and from users:
// repository paths (services/planner/repo_path.h) and the deployer's
// ResolveUnderRoot (services/deployer/host/safe_path.h), the latter against
// a real folder with symlinks inside and out of the root.
//
// Input: line 1 a folder, line 2 a relative path (the rest).
// Properties: what is accepted stays inside (no "..", not absolute, under
// the root), normalising is idempotent.

#include <sys/stat.h>
#include <unistd.h>

#include <climits>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "fuzz/fuzz_support.h"
#include "services/deployer/host/safe_path.h"
#include "services/planner/repo_path.h"

namespace {

bool HasDotDot(const std::string& p) {
  for (absl::string_view part : absl::StrSplit(p, '/')) {
    if (part == "..") return true;
  }
  return false;
}

// root/{dir/, dir/file, inside -> dir, outside -> /etc, dangling -> nowhere,
// loop -> loop}, made once per process and removed at exit.
std::string MakeRoot() {
  char tmpl[] = "/tmp/ferry-fuzz-root-XXXXXX";
  char* made = mkdtemp(tmpl);
  if (made == nullptr) std::abort();
  char real[PATH_MAX];
  if (realpath(made, real) == nullptr) std::abort();
  std::string root = real;  // ResolveUnderRoot answers with real paths
  mkdir((root + "/dir").c_str(), 0755);
  if (FILE* f = std::fopen((root + "/dir/file").c_str(), "w")) std::fclose(f);
  (void)!symlink((root + "/dir").c_str(), (root + "/inside").c_str());
  (void)!symlink("/etc", (root + "/outside").c_str());
  (void)!symlink("dir/../../", (root + "/up").c_str());
  (void)!symlink("/nonexistent/ferry", (root + "/dangling").c_str());
  (void)!symlink("loop", (root + "/loop").c_str());
  static std::string* to_remove = new std::string(root);
  std::atexit([] { (void)!std::system(("rm -rf '" + *to_remove + "'").c_str()); });
  return root;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string* root = new std::string(MakeRoot());
  std::vector<std::string> f = ferry::fuzz::SplitFields(data, size, 2);
  const std::string& dir = f[0];
  const std::string& rel = f[1];

  for (const std::string& p : {dir, rel}) {
    absl::StatusOr<std::string> n = ferry::planner::NormalizeRepoPath(p, "path");
    if (n.ok()) {
      if (HasDotDot(*n) || absl::StartsWith(*n, "/") || absl::EndsWith(*n, "/"))
        ferry::fuzz::Violated("normalised path escapes or is not normal", *n);
      absl::StatusOr<std::string> again = ferry::planner::NormalizeRepoPath(*n, "path");
      if (!again.ok() || *again != *n) ferry::fuzz::Violated("normalising is not idempotent", *n);
      if (!ferry::planner::IsUnderRepoPath(*n, "")) ferry::fuzz::Violated("path not under the root", *n);
      std::string parent = ferry::planner::RepoDirName(*n);
      if (!ferry::planner::IsUnderRepoPath(*n, parent)) ferry::fuzz::Violated("path not under its folder", *n);
    }
    (void)ferry::planner::FullRefName(p);
  }
  absl::StatusOr<std::string> resolved = ferry::planner::ResolveRepoPath(dir, rel);
  if (resolved.ok() && (HasDotDot(*resolved) || absl::StartsWith(*resolved, "/")))
    ferry::fuzz::Violated("resolved repository path escapes", *resolved);

  absl::StatusOr<std::string> under = ferry::deployer::host::ResolveUnderRoot(*root, rel, "path", false);
  if (under.ok() && !absl::StartsWith(*under, *root + "/"))
    ferry::fuzz::Violated("ResolveUnderRoot returned a path outside the root", *under);
  return 0;
}
