#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "common/concurrency/mutex.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "services/deployer/deployer_metrics.h"
#include "services/deployer/deployment_runner.h"
#include "services/deployer/deployment_scheduler.h"
#include "services/deployer/deployment_store.h"
#include "services/deployer/drift_policy.h"
#include "services/deployer/target.h"

namespace ferry::deployer {

// Compares the live state of every managed application with its last
// applied state when it is due, records each drift episode once, and heals
// drift (selfHeal, or the object's own policy) with a SELF_HEAL deployment
// run by the scheduler like any other (a slot, the application's lock, a
// worker), backing off after failed heals. Thread-safe.
class DriftController {
 public:
  // `list_refresh`: how old the list of managed applications a pass walks
  // may be (it only says who may be due; the due applications' records are
  // read again, together, when they are checked, and an application that
  // shows drift once more under its lock).
  DriftController(DeploymentRecords* records, DriftStore* drift, TargetFactory* targets, DeploymentScheduler* scheduler,
                  DeploymentRunner* runner, DriftPolicy* policy, DeployerMetrics* metrics, const Clock* clock,
                  absl::Duration list_refresh = absl::Seconds(10));

  // One drift pass over every managed application that is due (all with
  // `force`), starting heals where selfHeal or the object's policy asks for
  // it. Does not wait for the heals.
  void DriftPass(bool force);

 private:
  using Episodes = std::map<std::string, std::pair<std::string, int64_t>>;  // object key -> (message, drift id)
  // The managed applications as last listed, with what a pass asks of each
  // whether due or not: its "app/env" key and its target (nullptr when its
  // target configuration is refused; its check reports why). Resolved once
  // per list read, not once per application and pass: at 10,000
  // applications a pass each second resolved 10,000 targets (a host
  // target's root_dir checked on the filesystem each time) to find the 333
  // due (issue #23).
  // Targets resolved once per distinct configuration, for one list read or
  // one pass (TargetFactory::For checks a host target's root on the
  // filesystem each time). Not thread-safe: owned by its caller.
  class TargetsByConfig {
   public:
    explicit TargetsByConfig(TargetFactory* targets) : targets_(targets) {}
    // nullptr when the configuration is refused.
    Target* For(const v1::DeployTarget& config);

   private:
    TargetFactory* const targets_;
    std::map<std::string, Target*> by_config_;
  };
  struct Listed {
    std::vector<ManagedApp> apps;
    std::vector<std::string> keys;
    std::vector<Target*> targets;
  };
  // The list, read again when older than list_refresh_ (or with `force`).
  absl::StatusOr<std::shared_ptr<const Listed>> ListManaged(bool force);
  // Checks one due application; `read`: its inputs as read with the pass's
  // other due applications (nullptr: not managed); `targets`: the pass's.
  void CheckDrift(const ManagedApp& listed, const std::optional<v1::DriftSettings>& global,
                  const DriftStore::DriftCheckInputs* read, TargetsByConfig& targets);
  // Whether every applied object is live as applied (none MODIFIED or
  // MISSING); if so, records the check's outcome (health, no drift).
  bool InSync(const ManagedApp& app, const std::vector<AppliedObject>& applied, Target& target);

  // Due applications whose inputs one read fetches.
  static constexpr size_t kReadBatch = 500;
  // Sorts objects to heal into the order the live deployment applied them.
  static void OrderAsApplied(const v1::Plan& live_spec, std::vector<TargetObject>& objects);
  // Runs a recorded SELF_HEAL deployment (on a worker, holding the lock) and
  // settles its drift records or backs off.
  void Heal(const ManagedApp& app, const v1::DriftSettings& settings, const v1::Deployment& d, const v1::Plan& spec,
            const std::vector<int64_t>& drift_ids, const std::vector<std::string>& drift_keys);

  DeploymentRecords* const records_;
  DriftStore* const drift_;
  TargetFactory* const targets_;
  DeploymentScheduler* const scheduler_;
  DeploymentRunner* const runner_;
  DriftPolicy* const policy_;
  DeployerMetrics* const metrics_;
  const Clock* const clock_;
  const absl::Duration list_refresh_;

  ferry::Mutex list_mu_;
  std::shared_ptr<const Listed> listed_ ABSL_GUARDED_BY(list_mu_);
  std::optional<absl::Time> listed_at_ ABSL_GUARDED_BY(list_mu_);

  // Drift bookkeeping, per "app/env".
  ferry::Mutex mu_;
  // Hashed: a pass looks up every listed application (10,000 a second).
  absl::flat_hash_map<std::string, absl::Time> next_check_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Duration> interval_ ABSL_GUARDED_BY(mu_);  // the last effective interval
  std::map<std::string, Episodes> active_drift_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::pair<int, absl::Time>> heal_backoff_ ABSL_GUARDED_BY(mu_);  // failures, not before
};

}  // namespace ferry::deployer
