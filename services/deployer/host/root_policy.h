#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ferry::deployer::host {

// Which directories an environment's rootDir may be. The deployer writes
// files, pid records and logs under a root as its own uid, so a root is
// resolved (realpath of its deepest existing ancestor, the rest appended,
// symlinks followed) before it is used, and refused (INVALID_ARGUMENT naming
// target.host.root_dir) when it resolves to:
//   - `/`, always;
//   - a place inside another environment's Ferry state (a `.ferry/run`
//     component), always;
//   - a place not beneath (or equal to) one of the allowed roots, when any
//     are given (`--allowed-roots` on the deployer).
// Thread-safe (immutable).
class RootPolicy {
 public:
  // `allowed` empty: any root other than the always-refused ones.
  explicit RootPolicy(std::vector<std::string> allowed = {});

  // The resolved root, or the refusal.
  absl::StatusOr<std::string> Check(const std::string& root_dir) const;

  bool restricted() const { return !allowed_.empty(); }
  const std::vector<std::string>& allowed() const { return allowed_; }

 private:
  std::vector<std::string> allowed_;  // Resolved.
};

// `path` absolute, resolved as far as it exists (realpath of the deepest
// existing ancestor) with the missing rest appended, lexically normal.
std::string ResolveExisting(const std::string& path);

}  // namespace ferry::deployer::host
