#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "common/concurrency/background_loop.h"
#include "common/concurrency/mutex.h"
#include "ferry/v1/deployer.pb.h"
#include "services/deployer/deployer_metrics.h"
#include "services/deployer/deployment_differ.h"
#include "services/deployer/deployment_history.h"
#include "services/deployer/deployment_notifier.h"
#include "services/deployer/deployment_runner.h"
#include "services/deployer/deployment_scheduler.h"
#include "services/deployer/deployment_starter.h"
#include "services/deployer/deployment_store.h"
#include "services/deployer/drift_controller.h"
#include "services/deployer/drift_policy.h"
#include "services/deployer/lease_keeper.h"
#include "services/deployer/leased_app_locks.h"
#include "services/deployer/live_state_observer.h"
#include "services/deployer/orphan_recovery.h"
#include "services/deployer/outcome_reporter.h"
#include "services/deployer/pin_service.h"
#include "services/deployer/plan_consumer.h"
#include "services/deployer/plan_source.h"
#include "services/deployer/rollback_service.h"
#include "services/deployer/target.h"

namespace ferry::deployer {

struct DeployerOptions {
  std::string deployer_id = "deployer";
  // Default drift observation interval (per-application settings override it).
  absl::Duration drift_interval = absl::Seconds(30);
  // How often the maintenance loop wakes (drift due times, orphan recovery,
  // outcome reports).
  absl::Duration tick = absl::Seconds(1);
  // The wait before reconnecting to the plan stream, and the first wait
  // after a failure (a plan not taken, a failed stream), doubling up to 30 s.
  absl::Duration plan_retry = absl::Seconds(2);
  // Plans handed off (acknowledged, recorded, started) at once; one at a
  // time per application and environment.
  int intake_concurrency = 4;
  // Tries of a plan failing other than transiently before it is given up
  // on (reported FAILED) so the plans behind it flow.
  int plan_attempts = 3;
  // Deployments run at once by this process (each waits for its
  // application's lock first); more wait to start.
  int max_concurrent_deployments = 16;
  // The deployer group this replica belongs to (--deployer-group): it takes
  // only plans of environments owned by this group (Plan.deployer_group,
  // empty = "default").
  std::string deployer_group = "default";
  // Replicas: the environment leases of this replica (main.cc wires one;
  // its holder and group must match deployer_id and deployer_group). When
  // set, this replica deploys, recovers and checks drift only where it holds
  // the lease; the Deployer renews them and releases them on Stop(). Null:
  // every environment is this deployer's (tests of one deployer).
  LeaseKeeper* leases = nullptr;
  RunnerOptions runner;
};

// The deployer's front: builds its components (deployment_scheduler,
// plan_consumer, outcome_reporter, orphan_recovery, drift_controller,
// rollback_service, pin_service, live_state_observer, deployment_history),
// runs the plan and maintenance loops, and gives the gRPC handlers one
// object to call. No logic of its own. Thread-safe.
class Deployer {
 public:
  // The plan and maintenance loops wait on `clock` (tests pass a fake one).
  Deployer(DeploymentStore* store, TargetFactory* targets, PlanSource* plans, DeploymentNotifier* notifier,
           DeployerMetrics* metrics, const WaitableClock* clock, DeployerOptions options,
           FetcherFactory fetchers = nullptr);
  ~Deployer();

  // Takes the free environment leases of its group (with options.leases),
  // recovers unfinished deployments, then starts the lease, plan and
  // maintenance loops.
  void Start();
  // Stops the loops; running deployments stop between steps and are left
  // for recovery; then releases the environment leases, so that another
  // replica of the group takes them (and recovers those deployments) at
  // once. Idempotent.
  void Stop();

  // See PlanConsumer::HandlePlan.
  absl::StatusOr<std::string> HandlePlan(const v1::Plan& plan) { return consumer_.HandlePlan(plan); }
  // Waits until no deployment runs in this process (tests, benchmarks).
  void WaitIdle() { scheduler_.WaitIdle(); }

  // One drift pass over every managed application that is due (all with
  // `force`); heals it starts run on scheduler workers (see WaitIdle).
  void DriftPass(bool force) { drift_.DriftPass(force); }
  // Recovers every unfinished deployment no live holder is running.
  void RecoverOrphans() { recovery_.RecoverOrphans(); }
  // Reports terminal outcomes the planner has not acknowledged.
  void ReportOutcomes() { reporter_.ReportOutcomes(); }

  absl::StatusOr<v1::Deployment> GetDeployment(const std::string& id) { return history_.GetDeployment(id); }
  absl::StatusOr<v1::ListDeploymentsResponse> ListDeployments(const v1::ListDeploymentsRequest& req) {
    return history_.ListDeployments(req);
  }
  absl::StatusOr<v1::DiffDeploymentsResponse> DiffDeployments(const v1::DiffDeploymentsRequest& req) {
    return differ_.Diff(req);
  }
  absl::StatusOr<v1::RollbackResponse> Rollback(const v1::RollbackRequest& req) { return rollback_.Rollback(req); }
  absl::StatusOr<v1::PinState> Pin(const v1::PinRequest& req) { return pins_.Pin(req); }
  absl::StatusOr<v1::PinState> Unpin(const v1::UnpinRequest& req) { return pins_.Unpin(req); }
  absl::StatusOr<v1::LiveState> GetLiveState(const v1::GetLiveStateRequest& req) { return observer_.GetLiveState(req); }
  absl::StatusOr<v1::ObserveLiveStateResponse> ObserveLiveState(const v1::ObserveLiveStateRequest& req,
                                                                 size_t page_bytes = LiveStateObserver::kDefaultPageBytes) {
    return observer_.ObserveLiveState(req, page_bytes);
  }
  absl::StatusOr<v1::DriftSettings> GetDriftSettings(const std::string& app, const std::string& env) {
    return drift_policy_.Get(app, env);
  }
  absl::StatusOr<v1::DriftSettings> UpdateDriftSettings(const v1::UpdateDriftSettingsRequest& req) {
    return drift_policy_.Update(req);
  }

  DeploymentNotifier& notifier() { return *notifier_; }
  DeploymentStore& store() { return *store_; }

 private:
  // One round of the maintenance loop: orphan recovery, outcome reports
  // and a drift pass. Everything here is quick: deployments it starts
  // (recoveries, heals) run on scheduler workers, so one slow deployment
  // never holds up the others' recovery, reports or drift checks.
  absl::StatusOr<absl::Duration> MaintenanceStep();

  DeploymentStore* const store_;
  PlanSource* const plans_;
  DeploymentNotifier* const notifier_;
  const DeployerOptions options_;
  const WaitableClock* const clock_;

  // The scheduler's locks when environments are leased (options.leases).
  std::unique_ptr<LeasedAppLocks> leased_locks_;
  DeploymentRunner runner_;
  DeploymentScheduler scheduler_;
  OutcomeReporter reporter_;
  DeploymentStarter starter_;
  PlanConsumer consumer_;
  OrphanRecovery recovery_;
  DriftPolicy drift_policy_;
  DriftController drift_;
  RollbackService rollback_;
  PinService pins_;
  LiveStateObserver observer_;
  DeploymentHistory history_;
  DeploymentDiffer differ_;

  ferry::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  // Follows the plan stream (PlanConsumer::ConsumeStream), reconnecting
  // after plan_retry or backing off after a failure. Null without a plan
  // source.
  std::unique_ptr<concurrency::BackgroundLoop> plan_loop_ ABSL_GUARDED_BY(mu_);
  // MaintenanceStep every tick.
  std::unique_ptr<concurrency::BackgroundLoop> maintenance_loop_ ABSL_GUARDED_BY(mu_);
  // LeaseKeeper::Tick every ttl/3, on its own thread so that a slow
  // maintenance step never lets a lease lapse. Null without leases.
  std::unique_ptr<concurrency::BackgroundLoop> lease_loop_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::deployer
