#pragma once

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "common/concurrency/backoff.h"
#include "ferry/v1/planner.pb.h"
#include "services/deployer/deployer_metrics.h"
#include "services/deployer/deployment_scheduler.h"
#include "services/deployer/deployment_starter.h"
#include "services/deployer/deployment_store.h"
#include "services/deployer/lease_keeper.h"
#include "services/deployer/plan_source.h"
#include "services/deployer/target.h"

namespace ferry::deployer {

// Reads files of an application folder for a plan (ConfigFile contentFrom);
// may be null, then contentFrom is refused.
using FetcherFactory = std::function<FileFetcher(const v1::Plan& plan)>;

struct PlanConsumerOptions {
  std::string deployer_id = "deployer";
  absl::Duration plan_retry = absl::Seconds(2);
  // Plans handed off (acknowledged, recorded, started) at once; one at a
  // time per application and environment.
  int intake_concurrency = 4;
  // While hand-offs run, the stream position is saved at most this often;
  // at once when none runs. A deployer that dies in between is given the
  // plans since again, which it finds recorded already.
  absl::Duration cursor_save_interval = absl::Milliseconds(100);
  // Tries of a plan that fails other than transiently (not an outage)
  // before it is given up on (reported FAILED) so the stream moves on.
  int plan_attempts = 3;
  // This deployer's group: plans of other groups' environments are skipped.
  std::string deployer_group = "default";
  // Replicas: each plan's environment is claimed (registered as this
  // group's, its lease taken when free). May be null.
  LeaseKeeper* leases = nullptr;
};

// The deployer group a plan belongs to ("default" when it names none).
std::string GroupOf(const v1::Plan& plan);

// Takes released plans from the planner's stream: skips those already
// handled and automatic ones of a pinned application, acknowledges the
// rest, checks and resolves their objects, records the deployment and
// starts it. Advances the saved stream cursor over plans taken. A plan that
// cannot be started (other than for an outage) is recorded FAILED with the
// reason; one that cannot even be taken is reported FAILED after
// plan_attempts tries: neither blocks the plans behind it. Thread-safe.
class PlanConsumer {
 public:
  // `plans` may be null (then ConsumeStream() must not be called and nothing is
  // acknowledged).
  PlanConsumer(DeploymentRecords* records, PlanCursorStore* cursor, PlanSource* plans,
               TargetFactory* targets, FetcherFactory fetchers, DeploymentScheduler* scheduler,
               DeploymentStarter* starter, const Clock* clock, PlanConsumerOptions options,
               DeployerMetrics* metrics = nullptr);

  // One connection to the stream: watches it from the saved cursor, hands
  // plans off and drains the hand-offs when it ends. Returns the wait before
  // reconnecting (plan_retry), or the failure (no cursor, a failed hand-off)
  // that the caller backs off from. The step of the Deployer's plan loop.
  absl::StatusOr<absl::Duration> ConsumeStream();

  // Takes one released plan (FAILED_PRECONDITION when it belongs to another
  // deployer group): skips it when already handled or when the
  // application is pinned and the plan was approved automatically;
  // otherwise acknowledges it, records the deployment and runs it in the
  // background. Returns the deployment id ("" when skipped).
  absl::StatusOr<std::string> HandlePlan(const v1::Plan& plan);

  // Retries of a plan, and reconnections after a failed stream: from
  // plan_retry, doubling, up to 30 s.
  static concurrency::BackoffPolicy RetryPolicy(const PlanConsumerOptions& options);

 private:
  // HandlePlan, retried with backoff until it succeeds, the plan proves
  // malformed (skipped) or the deployer stops (then its error).
  absl::Status TakePlan(const v1::Plan& plan);
  absl::StatusOr<v1::Deployment> StartDeployment(v1::Deployment d, const v1::Plan& plan);
  // Counts a plan given up on and reports it FAILED to the planner.
  void GiveUp(const v1::Plan& plan, const std::string& deployment_id, const std::string& reason);

  DeploymentRecords* const records_;
  PlanCursorStore* const cursor_;
  PlanSource* const plans_;
  TargetFactory* const targets_;
  const FetcherFactory fetchers_;
  DeploymentScheduler* const scheduler_;
  DeploymentStarter* const starter_;
  const Clock* const clock_;
  const PlanConsumerOptions options_;
  DeployerMetrics* const metrics_;
};

}  // namespace ferry::deployer
