#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock/clock.h"
#include "ferry/v1/deployer.pb.h"
#include "services/deployer/deployer_metrics.h"
#include "services/deployer/deployment_notifier.h"
#include "services/deployer/deployment_runner.h"
#include "services/deployer/deployment_store.h"
#include "services/deployer/plan_source.h"
#include "services/deployer/target.h"

namespace ferry::deployer {

struct DeployerOptions {
  std::string deployer_id = "deployer";
  // Default drift observation interval (per-application settings override it).
  absl::Duration drift_interval = absl::Seconds(30);
  // How often the maintenance loop wakes (drift due times, orphan recovery,
  // outcome reports).
  absl::Duration tick = absl::Seconds(1);
  absl::Duration plan_retry = absl::Seconds(2);
  // Plans handed off (acknowledged, recorded, started) at once; one at a
  // time per application and environment.
  int intake_concurrency = 4;
  // Deployments run at once by this process (each waits for its
  // application's lock first); more wait to start.
  int max_concurrent_deployments = 16;
  RunnerOptions runner;
};

// Reads files of an application folder for a plan (ConfigFile contentFrom);
// may be null, then contentFrom is refused.
using FetcherFactory = std::function<FileFetcher(const v1::Plan& plan)>;

// The deployer's domain logic: consumes released plans, runs deployments
// (one at a time per application and environment), recovers deployments
// left by a dead deployer, detects and heals drift, and serves history,
// rollback, pins and live state. No gRPC or SQL here. Thread-safe.
class Deployer {
 public:
  Deployer(DeploymentStore* store, TargetFactory* targets, PlanSource* plans, DeploymentNotifier* notifier,
           DeployerMetrics* metrics, const Clock* clock, DeployerOptions options, FetcherFactory fetchers = nullptr);
  ~Deployer();

  // Recovers unfinished deployments, then starts the plan and maintenance
  // loops.
  void Start();
  // Stops the loops; running deployments stop between steps and are left
  // for recovery. Idempotent.
  void Stop();

  // Takes one released plan: skips it when already handled or when the
  // application is pinned and the plan was approved automatically;
  // otherwise acknowledges it, records the deployment and runs it in the
  // background. Returns the deployment id ("" when skipped).
  absl::StatusOr<std::string> HandlePlan(const v1::Plan& plan);
  // Waits until no deployment runs in this process (tests, benchmarks).
  void WaitIdle();

  // One drift pass over every managed application that is due (all with
  // `force`), healing where selfHeal or the object's policy asks for it.
  void DriftPass(bool force);
  // Recovers every unfinished deployment no live holder is running.
  void RecoverOrphans();
  // Reports terminal outcomes the planner has not acknowledged (one pass at
  // a time; a call during a pass makes it run again).
  void ReportOutcomes();

  absl::StatusOr<v1::Deployment> GetDeployment(const std::string& id);
  absl::StatusOr<v1::ListDeploymentsResponse> ListDeployments(const v1::ListDeploymentsRequest& req);
  absl::StatusOr<v1::RollbackResponse> Rollback(const v1::RollbackRequest& req);
  absl::StatusOr<v1::PinState> Pin(const v1::PinRequest& req);
  absl::StatusOr<v1::PinState> Unpin(const v1::UnpinRequest& req);
  absl::StatusOr<v1::LiveState> GetLiveState(const v1::GetLiveStateRequest& req);
  absl::StatusOr<v1::LiveState> ObserveLiveState(const v1::ObserveLiveStateRequest& req);
  absl::StatusOr<v1::DriftSettings> GetDriftSettings(const std::string& app, const std::string& env);
  absl::StatusOr<v1::DriftSettings> UpdateDriftSettings(const v1::UpdateDriftSettingsRequest& req);

  DeploymentNotifier& notifier() { return *notifier_; }
  DeploymentStore& store() { return *store_; }

 private:
  void PlanLoop();
  void ReportOutcomesOnce();
  // HandlePlan, retried with backoff until it succeeds, the plan proves
  // malformed (skipped) or the deployer stops (then its error).
  absl::Status TakePlan(const v1::Plan& plan);
  void MaintenanceLoop();
  // Waits until fewer than max_concurrent_deployments run, then counts the
  // deployment as in flight (so recovery leaves it alone); false when
  // stopping. Spawn or ReleaseSlot follows.
  bool ReserveSlot(const std::string& deployment_id);
  void ReleaseSlot(const std::string& deployment_id);
  // Runs `fn` on a worker thread tracked for Stop() and WaitIdle().
  void Spawn(const std::string& deployment_id, std::function<void()> fn);
  // The (app, env) lock, or null when it is held. Releasing it wakes
  // AcquireLock waiters in this process at once.
  absl::StatusOr<std::unique_ptr<AppLock>> TryLock(const std::string& app, const std::string& env);
  // Waits for the (app, env) lock; null when stopping. Woken when a lock of
  // this process is released; a lock held by another replica is retried
  // every kLockRetry.
  std::unique_ptr<AppLock> AcquireLock(const std::string& app, const std::string& env);
  void Execute(v1::Deployment d, v1::Plan spec);
  absl::StatusOr<v1::Deployment> StartDeployment(v1::Deployment d, const v1::Plan& plan);
  void CheckDrift(const ManagedApp& app, const v1::DriftSettings& settings);
  absl::StatusOr<v1::LiveState> Observe(const std::string& app, const std::string& env, const v1::DeployTarget* target,
                                        const std::vector<ObjectKey>& extra, bool include_json);
  absl::StatusOr<v1::DriftSettings> EffectiveSettings(const std::string& app, const std::string& env);

  DeploymentStore* store_;
  TargetFactory* targets_;
  PlanSource* plans_;
  DeploymentNotifier* notifier_;
  DeployerMetrics* metrics_;
  const Clock* clock_;
  const DeployerOptions options_;
  FetcherFactory fetchers_;
  DeploymentRunner runner_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool started_ = false;
  uint64_t lock_releases_ = 0;  // Counts locks of this process released (under mu_).
  std::set<std::string> in_flight_;  // Deployment ids run by this process.
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<Worker> workers_;
  std::thread plan_thread_;
  std::thread maintenance_thread_;

  std::mutex report_mu_;
  bool reporting_ = false;     // guarded by report_mu_
  bool report_again_ = false;  // guarded by report_mu_

  // Drift bookkeeping, per "app/env".
  std::mutex drift_mu_;
  std::map<std::string, absl::Time> next_drift_check_;
  std::map<std::string, std::map<std::string, std::pair<std::string, int64_t>>> active_drift_;  // key -> (message, id)
  std::map<std::string, std::pair<int, absl::Time>> heal_backoff_;  // failures, not before
};

}  // namespace ferry::deployer
