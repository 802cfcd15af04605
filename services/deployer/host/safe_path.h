#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace ferry::deployer::host {

// Checks that `relative` names a place under `root` and returns its absolute
// path. Refuses (INVALID_ARGUMENT, naming `field`) an empty or absolute path,
// any ".." component, and an existing symlink on the way (or at the end)
// whose target is outside `root`. With `create_parents`, missing parent
// directories are created (each one re-checked).
absl::StatusOr<std::string> ResolveUnderRoot(const std::string& root, const std::string& relative,
                                             const std::string& field, bool create_parents);

}  // namespace ferry::deployer::host
