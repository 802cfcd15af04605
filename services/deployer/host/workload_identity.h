#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace ferry::deployer::host {

// Whom the host target's workloads (Process instances, validate and reload
// commands, exec probes) run as. Unset uid: the deployer's own uid (a
// non-root deployer, which cannot change uid; it is non-dumpable, so they
// still cannot read its environment). Set: the child changes to uid and gid
// (no supplementary groups) after fork, before exec, so a workload can write
// nothing of the deployer's: not its pid records, not other environments,
// not outside its root, unless that uid may.
struct WorkloadIdentity {
  std::optional<uid_t> uid;
  gid_t gid = 0;
  std::string name;  // As given, for messages.
};

// Resolves a user (a name or a number) and an optional group (name or
// number; empty: the user's primary group, or the uid's number for a uid
// with no passwd entry). Errors (INVALID_ARGUMENT) start with `field`. Root
// is resolved like any other user: the callers decide whether it is allowed.
absl::StatusOr<WorkloadIdentity> ResolveUserGroup(const std::string& user, const std::string& group,
                                                  const std::string& field);

// Resolves `--workload-user`: a user name or a number, optionally
// ":group" (name or number; default the user's primary group). Empty: unset.
// Root (uid 0) is refused: workloads run as root only through an
// environment's runAs with allowRoot and --allow-root-workloads.
absl::StatusOr<WorkloadIdentity> ResolveWorkloadUser(const std::string& spec);

// "uid:gid" of a set identity, "" when unset.
std::string IdentityKey(const WorkloadIdentity& who);

}  // namespace ferry::deployer::host
