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

// ResolveUnderRoot's checks of the string alone (no filesystem access): an
// empty or absolute path, a NUL byte, a ".." component, no file named.
absl::Status CheckRelativePath(const std::string& relative, const std::string& field);

}  // namespace ferry::deployer::host

namespace ferry::deployer::host {

// Opens the directory `relative_dir` (relative, no "..", may be empty for
// the root itself) beneath `root` as a descriptor (O_RDONLY | O_DIRECTORY |
// O_CLOEXEC) for writes without a check-then-use window: each component is
// opened from its parent's descriptor (openat2 RESOLVE_BENEATH, or openat
// where the kernel refuses an absolute symlink or lacks openat2) and the
// directory the descriptor really is (/proc/self/fd) must be beneath the
// root's, so a symlink swapped in after the string check cannot move the
// write. With `create`, missing directories are made (0755) with mkdirat in
// their opened parent. Errors name `field`: INVALID_ARGUMENT for an escape or
// a non-directory, NOT_FOUND for a missing directory, INTERNAL otherwise. The caller closes the descriptor.
// `real_path`, when given, receives the path the descriptor was checked at
// (one /proc/self/fd read fewer for a caller that needs it; issue #23).
absl::StatusOr<int> OpenDirBeneath(const std::string& root, const std::string& relative_dir,
                                   const std::string& field, bool create, std::string* real_path = nullptr);

// The path the kernel has for an open descriptor (/proc/self/fd), or "".
std::string PathOfFd(int fd);

}  // namespace ferry::deployer::host
