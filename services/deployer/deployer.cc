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
  c.plan_attempts = options.plan_attempts;
  return c;
}

}  // namespace

Deployer::Deployer(DeploymentStore* store, TargetFactory* targets, PlanSource* plans, DeploymentNotifier* notifier,
                   DeployerMetrics* metrics, const WaitableClock* clock, DeployerOptions options,
                   FetcherFactory fetchers)
    : store_(store),
      plans_(plans),
      notifier_(notifier),
      options_(options),
      clock_(clock),
      runner_(store, targets, notifier, metrics, clock, RunnerOptionsOf(options)),
      scheduler_(store, options.max_concurrent_deployments),
      reporter_(store, store, plans),
      starter_(store, &scheduler_, &runner_, &reporter_),
      consumer_(store, store, store, plans, targets, std::move(fetchers), &scheduler_, &starter_, clock,
                ConsumerOptionsOf(options), metrics),
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
    ferry::MutexLock l(&mu_);
    if (started_) return;
    started_ = true;
  }
  RecoverOrphans();
  ferry::MutexLock l(&mu_);
  if (scheduler_.stopping()) return;  // Stop() came first.
  if (plans_ != nullptr) {
    concurrency::LoopOptions plan_options;
    plan_options.backoff = PlanConsumer::RetryPolicy(ConsumerOptionsOf(options_));
    plan_loop_ = std::make_unique<concurrency::BackgroundLoop>(
        "plan stream", [this] { return consumer_.ConsumeStream(); }, plan_options, clock_);
    plan_loop_->Start();
  }
  concurrency::LoopOptions maintenance_options;
  maintenance_options.first_run_after = options_.tick;
  maintenance_loop_ = std::make_unique<concurrency::BackgroundLoop>(
      "maintenance", [this] { return MaintenanceStep(); }, maintenance_options, clock_);
  maintenance_loop_->Start();
}

void Deployer::Stop() {
  if (!scheduler_.Stop()) return;
  runner_.Stop();
  if (plans_ != nullptr) plans_->Cancel();
  std::unique_ptr<concurrency::BackgroundLoop> plan_loop, maintenance_loop;
  {
    ferry::MutexLock l(&mu_);
    plan_loop = std::move(plan_loop_);
    maintenance_loop = std::move(maintenance_loop_);
  }
  if (plan_loop) plan_loop->Stop();
  if (maintenance_loop) maintenance_loop->Stop();
  scheduler_.Join();
}

absl::StatusOr<absl::Duration> Deployer::MaintenanceStep() {
  RecoverOrphans();
  ReportOutcomes();
  DriftPass(false);
  return options_.tick;
}

}  // namespace ferry::deployer
