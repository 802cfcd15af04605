#include "services/deployer/host/workload_policy.h"

#include <unistd.h>

#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ferry::deployer::host {
namespace {

constexpr int kCapSetgid = 6;
constexpr int kCapSetuid = 7;

}  // namespace

bool CanSwitchUser() {
  if (geteuid() == 0) return true;
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (!absl::StartsWith(line, "CapEff:")) continue;
    uint64_t caps = 0;
    std::string hex = line.substr(7);
    hex.erase(0, hex.find_first_not_of(" \t"));
    if (!absl::SimpleHexAtoi(hex, &caps)) return false;
    return (caps >> kCapSetuid & 1) != 0 && (caps >> kCapSetgid & 1) != 0;
  }
  return false;
}

WorkloadPolicy::WorkloadPolicy(WorkloadPolicyOptions options)
    : WorkloadPolicy(std::move(options), geteuid(), getegid(), CanSwitchUser()) {}

WorkloadPolicy::WorkloadPolicy(WorkloadPolicyOptions options, uid_t deployer_uid, gid_t deployer_gid, bool can_switch)
    : options_(std::move(options)), deployer_uid_(deployer_uid), deployer_gid_(deployer_gid), can_switch_(can_switch) {}

absl::Status WorkloadPolicy::Check() const {
  for (const std::string& entry : options_.allowed_run_as) {
    absl::StatusOr<WorkloadIdentity> who = ResolveUserGroup(entry, "", "--allowed-run-as");
    if (!who.ok()) return who.status();
    if (*who->uid == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--allowed-run-as: \"", entry, "\" is root; root is allowed only by --allow-root-workloads"));
    }
  }
  if (options_.default_identity.uid.has_value() && !can_switch_ && *options_.default_identity.uid != deployer_uid_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--workload-user: \"", options_.default_identity.name, "\": the deployer runs as uid ", deployer_uid_,
        " without CAP_SETUID and CAP_SETGID, so it cannot run workloads as another user"));
  }
  return absl::OkStatus();
}

absl::StatusOr<WorkloadIdentity> WorkloadPolicy::For(const v1::HostTargetConfig& host) const {
  if (!host.has_run_as()) {
    if (options_.default_identity.uid.has_value()) return options_.default_identity;
    if (deployer_uid_ == 0 && !options_.root_deployer_runs_workloads_as_itself) {
      return absl::InvalidArgumentError(
          "target.host.run_as: the deployer runs as root and this environment names no user to run its workloads "
          "as: set runAs (user, group) on the environment or start the deployer with --workload-user; workloads "
          "never run as root by default");
    }
    return WorkloadIdentity{};  // The deployer's own uid.
  }
  const v1::HostRunAs& run_as = host.run_as();
  absl::StatusOr<WorkloadIdentity> who = ResolveUserGroup(run_as.user(), run_as.group(), "target.host.run_as");
  if (!who.ok()) return who.status();
  if (*who->uid == 0 || who->gid == 0) {
    if (!run_as.allow_root() || !options_.allow_root) {
      return absl::InvalidArgumentError(absl::StrCat(
          "target.host.run_as: \"", who->name, "\" is root (uid or gid 0): allowed only when the environment sets ",
          "runAs.allowRoot", run_as.allow_root() ? " (it does)" : " (it does not)",
          " and the deployer is started with --allow-root-workloads",
          options_.allow_root ? " (it is)" : " (it is not)"));
    }
  } else if (!options_.allowed_run_as.empty()) {
    bool allowed = false;
    for (const std::string& entry : options_.allowed_run_as) {
      absl::StatusOr<WorkloadIdentity> a = ResolveUserGroup(entry, "", "--allowed-run-as");
      if (entry == run_as.user() || (a.ok() && *a->uid == *who->uid)) {
        allowed = true;
        break;
      }
    }
    if (!allowed) {
      return absl::InvalidArgumentError(absl::StrCat("target.host.run_as: user \"", run_as.user(), "\" (uid ",
                                                     *who->uid, ") is not in the deployer's --allowed-run-as (",
                                                     absl::StrJoin(options_.allowed_run_as, ","), ")"));
    }
  }
  if (*who->uid == deployer_uid_ && who->gid == deployer_gid_ && deployer_uid_ != 0) {
    return WorkloadIdentity{std::nullopt, 0, who->name};  // Already who the deployer is: nothing to switch.
  }
  if (!can_switch_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "target.host.run_as: \"", who->name, "\" (uid ", *who->uid, ", gid ", who->gid, "): the deployer runs as uid ",
        deployer_uid_, " without CAP_SETUID and CAP_SETGID and cannot run workloads as another user; run the "
        "deployer as root or drop runAs"));
  }
  return who;
}

}  // namespace ferry::deployer::host
