#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace ferry::planner {

// Repository-relative paths: "" is the root, no leading or trailing "/", no
// "." or ".." components.

// Normalises a user-given repository path ("./apps/web/" -> "apps/web").
// INVALID_ARGUMENT, naming `field`, for absolute paths and any ".."
// component (a path escaping the repository).
absl::StatusOr<std::string> NormalizeRepoPath(const std::string& path, const std::string& field);

// Resolves `relative` against the repository folder `dir` ("a/b" + "../c" ->
// "a/c"). INVALID_ARGUMENT when the result would leave the repository or
// `relative` is absolute.
absl::StatusOr<std::string> ResolveRepoPath(const std::string& dir, const std::string& relative);

// True when `path` is `root` or lies below it. The root "" contains all.
bool IsUnderRepoPath(const std::string& path, const std::string& root);

// The folder holding `path` ("a/b/c.yaml" -> "a/b"; "c.yaml" -> "").
std::string RepoDirName(const std::string& path);

// "main" -> "refs/heads/main"; full refs are kept.
std::string FullRefName(const std::string& ref);

}  // namespace ferry::planner
