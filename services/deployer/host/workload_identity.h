#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace ferry::deployer::host {

// Whom the host target's workloads (Process instances, validate and reload
// commands, exec probes) run as. Unset uid: the deployer's own uid (the
// default, as before; the deployer is non-dumpable, so they still cannot read
// its environment). Set: the child changes to uid and gid (no supplementary
// groups) after fork, before exec, so a workload can write nothing of the
// deployer's: not its pid records, not other environments, not outside its
// root, unless that uid may.
struct WorkloadIdentity {
  std::optional<uid_t> uid;
  gid_t gid = 0;
  std::string name;  // As given, for messages.
};

// Resolves `--workload-user`: a user name or a number, optionally
// ":group" (name or number; default the user's primary group). Empty: unset.
// Root (uid 0) is refused: run workloads as root by leaving it unset on a
// deployer that runs as root.
absl::StatusOr<WorkloadIdentity> ResolveWorkloadUser(const std::string& spec);

}  // namespace ferry::deployer::host
