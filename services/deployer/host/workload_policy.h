#pragma once

#include <sys/types.h>

#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ferry/v1/common.pb.h"
#include "services/deployer/host/workload_identity.h"

namespace ferry::deployer::host {

// The deployer's flags on whom workloads may run as.
struct WorkloadPolicyOptions {
  // --workload-user: the identity of environments without runAs.
  WorkloadIdentity default_identity;
  // --allowed-run-as: users (names or uids) an environment's runAs may name;
  // empty: any user but root.
  std::vector<std::string> allowed_run_as;
  // --allow-root-workloads: an environment's runAs may name root (uid or gid
  // 0) when it also sets allowRoot.
  bool allow_root = false;
  // --insecure-workloads-as-root: a root deployer runs the workloads of
  // environments without runAs as root, when --workload-user is unset. For
  // tests and throwaway trials only.
  bool root_deployer_runs_workloads_as_itself = false;
};

// Decides whom an environment's workloads run as (its target.host.run_as,
// else --workload-user), and refuses what the deployer's flags forbid:
//   - runAs naming root without both allowRoot and --allow-root-workloads;
//   - runAs naming a user not in --allowed-run-as (when given);
//   - a root deployer with neither runAs nor --workload-user (unless
//     --insecure-workloads-as-root): workloads never run as root by default;
//   - runAs naming another uid on a deployer that cannot change uid (not
//     root, no CAP_SETUID and CAP_SETGID).
// A non-root deployer without either runs workloads as its own uid (it can
// do nothing else; its non-dumpable flag keeps them out of its memory and
// environment). Refusals are INVALID_ARGUMENT naming target.host.run_as and
// the flag. Thread-safe (immutable).
class WorkloadPolicy {
 public:
  // `deployer_uid` and `can_switch` are the process's own unless given
  // (tests).
  explicit WorkloadPolicy(WorkloadPolicyOptions options = {});
  WorkloadPolicy(WorkloadPolicyOptions options, uid_t deployer_uid, gid_t deployer_gid, bool can_switch);

  // Resolves --allowed-run-as names: INVALID_ARGUMENT naming the flag for a
  // name that is no user of this machine. Call once at start.
  absl::Status Check() const;

  absl::StatusOr<WorkloadIdentity> For(const v1::HostTargetConfig& host) const;

  bool can_switch() const { return can_switch_; }

 private:
  WorkloadPolicyOptions options_;
  uid_t deployer_uid_;
  gid_t deployer_gid_;
  bool can_switch_;
};

// True when this process can change its uid and gid: root, or CAP_SETUID and
// CAP_SETGID in its effective set.
bool CanSwitchUser();

}  // namespace ferry::deployer::host
