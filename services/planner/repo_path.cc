#include "services/planner/repo_path.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace ferry::planner {

absl::StatusOr<std::string> NormalizeRepoPath(const std::string& path, const std::string& field) {
  if (absl::StartsWith(path, "/")) {
    return absl::InvalidArgumentError(field + ": \"" + path + "\" is absolute; give a repository-relative path");
  }
  std::vector<std::string> parts;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (part == ".") continue;
    if (part == "..") {
      return absl::InvalidArgumentError(field + ": \"" + path + "\" escapes the repository (\"..\" is not allowed)");
    }
    parts.emplace_back(part);
  }
  return absl::StrJoin(parts, "/");
}

absl::StatusOr<std::string> ResolveRepoPath(const std::string& dir, const std::string& relative) {
  if (absl::StartsWith(relative, "/")) {
    return absl::InvalidArgumentError("\"" + relative + "\" is absolute; paths must stay inside the repository");
  }
  // `dir` gets the same treatment: it may come from Git too (a helm
  // "# Source:" comment names the manifest's file).
  std::vector<std::string> parts;
  for (const std::string* path : {&dir, &relative}) {
    for (absl::string_view part : absl::StrSplit(*path, '/', absl::SkipEmpty())) {
      if (part == ".") continue;
      if (part == "..") {
        if (parts.empty()) {
          return absl::InvalidArgumentError("\"" + relative + "\" (from \"" + dir + "\") escapes the repository");
        }
        parts.pop_back();
        continue;
      }
      parts.emplace_back(part);
    }
  }
  return absl::StrJoin(parts, "/");
}

bool IsUnderRepoPath(const std::string& path, const std::string& root) {
  if (root.empty()) return true;
  if (path == root) return true;
  return path.size() > root.size() && absl::StartsWith(path, root) && path[root.size()] == '/';
}

std::string RepoDirName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

std::string FullRefName(const std::string& ref) {
  if (ref.empty() || absl::StartsWith(ref, "refs/")) return ref;
  return "refs/heads/" + ref;
}

}  // namespace ferry::planner
