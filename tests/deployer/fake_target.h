#pragma once

#include <functional>
#include <map>
#include <set>
#include <utility>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/concurrency/mutex.h"
#include "services/deployer/target.h"

namespace ferry::deployer::testing {

// A Target in memory: Prepare passes objects through (an object of kind
// "Refused" is INVALID_ARGUMENT), Apply records them and, for an
// application whose applies are held, blocks until released (or
// cancelled); everything is HEALTHY; Observe reports the drift set with
// SetDrift until the object is applied again. Thread-safe. Also its own TargetFactory.
class FakeTarget final : public Target, public TargetFactory {
 public:
  absl::StatusOr<std::vector<TargetObject>> Prepare(const AppScope& app, std::vector<TargetObject> objects,
                                                   const FileFetcher& fetch) override;
  absl::Status Apply(const AppScope& app, const TargetObject& desired, const TargetObject* previous,
                     absl::Time deadline, const std::atomic<bool>* cancel) override;
  absl::Status Delete(const AppScope& app, const TargetObject& applied, absl::Time deadline) override;
  ObservedObject Observe(const AppScope& app, const ObjectKey& key, const TargetObject* applied) override;
  std::pair<v1::HealthStatus, std::string> Health(const AppScope& app, const TargetObject& applied) override;
  // UNIMPLEMENTED unless EnableDryRun(): then the desired JSON with
  // "dryRun": true added, counted per application.
  absl::StatusOr<DryRunResult> DryRun(const AppScope& app, const TargetObject& desired) override;
  bool DryRunIsThePlan() const override;
  absl::StatusOr<Target*> For(const v1::DeployTarget& target) override;
  bool TakeChanged(const AppScope& app) override;

  // Calls of For so far.
  int for_calls();
  // TakeChanged answers true once for `app` in `env` (as a watch would
  // after someone else changed one of its objects).
  void MarkChanged(const std::string& app, const std::string& env);

  // Applies of `app` wait until ReleaseApplies(app).
  void HoldApplies(const std::string& app);
  void ReleaseApplies(const std::string& app);
  // Applies of `app` fail (INTERNAL) while `fail` is true.
  void FailApplies(const std::string& app, bool fail);
  // Waits until an apply of `app` is held; false after `timeout`.
  bool WaitHeld(const std::string& app, absl::Duration timeout);
  // Most applies running at once so far, over all applications and for one.
  int max_concurrent_applies();
  int max_concurrent_applies(const std::string& app);
  // Applies of `app` so far, in order ("kind/name").
  std::vector<std::string> applied(const std::string& app);
  // Observe reports `drift` for the object `key` of `app` (IN_SYNC when unset)
  // until the object is applied again.
  void SetDrift(const std::string& app, const ObjectKey& key, v1::DriftStatus drift);
  // From now on keeps what is live per application (applied, not deleted):
  // Observe judges drift against it (MISSING when not live, MODIFIED when
  // it differs from the object given) and Health is MISSING when not live.
  void TrackLiveState();
  // The JSON live for `key` of `app` ("" when not live); needs TrackLiveState.
  std::string live(const std::string& app, const ObjectKey& key);
  // How often each (object, JSON) of `app` was applied: "group/kind/ns/name|json" -> count.
  std::map<std::string, int> apply_counts(const std::string& app);
  // A dry run from now on (is_the_plan: as Terraform's, whose dry run is the plan).
  void EnableDryRun(bool is_the_plan = false);
  // Dry runs of `app` so far ("kind/name").
  std::vector<std::string> dry_runs(const std::string& app);
  // Asked before every apply and delete; when it returns false the process
  // is taken to have died: nothing changes and the call fails (UNAVAILABLE).
  void SetGate(std::function<bool(const TargetObject&)> gate);

 private:
  mutable ferry::Mutex mu_;
  ferry::CondVar cv_;  // Signalled when an apply is held or applies are released.
  std::set<std::string> held_apps_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> failing_apps_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> waiting_ ABSL_GUARDED_BY(mu_);  // app -> applies held now
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  int max_running_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, int> running_per_app_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> max_per_app_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<std::string>> applied_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::map<std::string, v1::DriftStatus>> drift_ ABSL_GUARDED_BY(mu_);
  bool track_live_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, std::map<std::string, std::string>> live_ ABSL_GUARDED_BY(mu_);  // app -> key -> json
  std::map<std::string, std::map<std::string, int>> apply_counts_ ABSL_GUARDED_BY(mu_);
  std::function<bool(const TargetObject&)> gate_ ABSL_GUARDED_BY(mu_);
  bool dry_run_ ABSL_GUARDED_BY(mu_) = false;
  bool dry_run_is_the_plan_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, std::vector<std::string>> dry_runs_ ABSL_GUARDED_BY(mu_);
  int for_calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<std::pair<std::string, std::string>> changed_ ABSL_GUARDED_BY(mu_);  // (app, env)
};

}  // namespace ferry::deployer::testing
