#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "common/concurrency/mutex.h"
#include "services/deployer/deployer_metrics.h"
#include "services/deployer/lease_store.h"

namespace ferry::deployer {

// A deployer group name: 1 to 63 of a-z, 0-9 and '-', starting and ending
// with a letter or digit. INVALID_ARGUMENT naming --deployer-group otherwise.
absl::Status ValidateDeployerGroup(const std::string& group);

struct LeaseOptions {
  // This replica (--deployer-id): unique among running replicas.
  std::string holder = "deployer";
  // The deployer group it belongs to (--deployer-group).
  std::string group = "default";
  // How long a lease lasts without renewal (--lease-ttl): a dead or paused
  // holder's environments are taken over this long after its last renewal.
  absl::Duration ttl = absl::Seconds(15);
  // Leases this replica takes at most.
  int max_leases = 100000;
};

// Holds this replica's environment leases: takes the free or expired ones
// of its group, renews them every ttl/3, and drops those it lost (renewal
// refused: taken over, or moved to another group). A lease counts as held
// only until `ttl` minus a tenth after the start of its last successful
// renewal by this replica's clock, which is before the store can judge it
// expired; so after a pause (a stopped process, a partition) the replica
// stops acting before another can take over. Thread-safe.
class LeaseKeeper final : public LeaseFences {
 public:
  struct Held {
    std::string environment_id;
    int64_t token = 0;
    absl::Time valid_until;
  };

  LeaseKeeper(LeaseStore* store, const Clock* clock, LeaseOptions options, DeployerMetrics* metrics = nullptr);

  // One round: renews, drops what was lost, takes what is free. Returns the
  // wait before the next round (ttl / 3); a failed store call is logged and
  // retried then (held leases stay valid until their own time). The step of
  // the Deployer's lease loop.
  absl::StatusOr<absl::Duration> Tick();
  // An environment a plan of this group names: registered as the group's
  // and, when nobody holds it, taken now.
  absl::Status Claim(const std::string& env);
  // Frees every lease held (a clean stop) so that another replica takes
  // them at once; afterwards none is held.
  void ReleaseAll();

  bool Holds(const std::string& env) const { return TokenFor(env) != 0; }
  int64_t TokenFor(const std::string& env) const override;
  const std::string& holder() const override { return options_.holder; }
  const std::string& group() const { return options_.group; }
  absl::Duration ttl() const { return options_.ttl; }
  std::vector<Held> HeldLeases() const;

 private:
  // Takes free or expired leases of the group; `started` is when this
  // round began.
  absl::Status AcquireFree(absl::Time started);
  void Drop(const std::string& env, const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Time ValidUntil(absl::Time started) const { return started + options_.ttl - options_.ttl / 10; }

  LeaseStore* const store_;
  const Clock* const clock_;
  const LeaseOptions options_;
  DeployerMetrics* const metrics_;

  mutable ferry::Mutex mu_;
  std::map<std::string, Held> held_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> registered_ ABSL_GUARDED_BY(mu_);
  // Whether an acquisition succeeded yet (leases under this replica's id are
  // reclaimed only before: see LeaseStore::Acquire).
  bool acquired_once_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace ferry::deployer
