#include "services/deployer/deployer.h"

namespace ferry::deployer {
namespace {

RunnerOptions RunnerOptionsOf(const DeployerOptions& options) {
  RunnerOptions r = options.runner;
  r.deployer_id = options.deployer_id;
  return r;
}

PlanConsumerOptions ConsumerOptionsOf(const DeployerOptions& options) {
  PlanConsumerOptions c;
  c.deployer_id = options.deployer_id;
  c.plan_retry = options.plan_retry;
  c.intake_concurrency = options.intake_concurrency;
  return c;
}

}  // namespace

Deployer::Deployer(DeploymentStore* store, TargetFactory* targets, PlanSource* plans, DeploymentNotifier* notifier,
                   DeployerMetrics* metrics, const Clock* clock, DeployerOptions options, FetcherFactory fetchers)
    : store_(store),
      plans_(plans),
      notifier_(notifier),
      options_(options),
      runner_(store, targets, notifier, metrics, clock, RunnerOptionsOf(options)),
      scheduler_(store, options.max_concurrent_deployments),
      reporter_(store, store, plans),
      starter_(store, &scheduler_, &runner_, &reporter_),
      consumer_(store, store, store, plans, targets, std::move(fetchers), &scheduler_, &starter_, clock,
                ConsumerOptionsOf(options)),
      recovery_(store, &scheduler_, &runner_, &reporter_),
      drift_policy_(store, options.drift_interval),
      drift_(store, store, targets, &scheduler_, &runner_, &drift_policy_, metrics, clock),
      rollback_(store, store, plans, &consumer_, &starter_, clock),
      pins_(store, store, plans, clock),
      observer_(store, store, targets, clock),
      history_(store) {}

Deployer::~Deployer() { Stop(); }

void Deployer::Start() {
  {
    absl::MutexLock l(&mu_);
    if (started_) return;
    started_ = true;
  }
  RecoverOrphans();
  if (plans_ != nullptr) plan_thread_ = std::thread([this] { consumer_.Run(); });
  maintenance_thread_ = std::thread([this] { MaintenanceLoop(); });
}

void Deployer::Stop() {
  if (!scheduler_.Stop()) return;
  runner_.Stop();
  if (plans_ != nullptr) plans_->Cancel();
  if (plan_thread_.joinable()) plan_thread_.join();
  if (maintenance_thread_.joinable()) maintenance_thread_.join();
  scheduler_.Join();
}

void Deployer::MaintenanceLoop() {
  // Everything here is quick: deployments it starts (recoveries, heals) run
  // on scheduler workers, so one slow deployment never holds up the others'
  // recovery, reports or drift checks.
  while (!scheduler_.SleepUnlessStopping(options_.tick)) {
    RecoverOrphans();
    ReportOutcomes();
    DriftPass(false);
  }
}

}  // namespace ferry::deployer
