#include "services/deployer/deployer.h"

#include <algorithm>

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
  c.deployer_group = options.deployer_group;
  c.leases = options.leases;
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
      leased_locks_(options.leases != nullptr ? std::make_unique<LeasedAppLocks>(options.leases) : nullptr),
      runner_(store, targets, notifier, metrics, clock, RunnerOptionsOf(options)),
      scheduler_(leased_locks_ != nullptr ? static_cast<AppLocks*>(leased_locks_.get()) : store,
                 options.max_concurrent_deployments),
      reporter_(store, store, plans, leased_locks_.get()),
      starter_(store, &scheduler_, &runner_, &reporter_),
      consumer_(store, store, plans, targets, std::move(fetchers), &scheduler_, &starter_, clock,
                ConsumerOptionsOf(options), metrics),
      recovery_(store, &scheduler_, &runner_, &reporter_),
      drift_policy_(store, options.drift_interval),
      // The list of managed applications only says who may be due, and an
      // application is first due when it is first listed: read it once per
      // drift interval (at most 30 s apart, so a new application's first
      // check waits no longer than that). Every 10 s it was a third of an
      // idle deployer's own reads at 10,000 applications (issue #23).
      drift_(store, store, targets, &scheduler_, &runner_, &drift_policy_, metrics, clock,
             std::min(options.drift_interval, absl::Seconds(30))),
      rollback_(store, store, plans, &consumer_, &starter_, clock),
      pins_(store, store, plans, clock),
      observer_(store, targets, clock),
      history_(store),
      differ_(store) {}

Deployer::~Deployer() { Stop(); }

void Deployer::Start() {
  {
    ferry::MutexLock l(&mu_);
    if (started_) return;
    started_ = true;
  }
  // The leases first: recovery and drift act only where one is held.
  if (options_.leases != nullptr) (void)options_.leases->Tick();
  RecoverOrphans();
  ferry::MutexLock l(&mu_);
  if (scheduler_.stopping()) return;  // Stop() came first.
  if (options_.leases != nullptr) {
    concurrency::LoopOptions lease_options;
    lease_options.first_run_after = options_.leases->ttl() / 3;
    lease_loop_ = std::make_unique<concurrency::BackgroundLoop>(
        "environment leases", [this] { return options_.leases->Tick(); }, lease_options, clock_);
    lease_loop_->Start();
  }
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
  std::unique_ptr<concurrency::BackgroundLoop> plan_loop, maintenance_loop, lease_loop;
  {
    ferry::MutexLock l(&mu_);
    plan_loop = std::move(plan_loop_);
    maintenance_loop = std::move(maintenance_loop_);
    lease_loop = std::move(lease_loop_);
  }
  if (plan_loop) plan_loop->Stop();
  if (maintenance_loop) maintenance_loop->Stop();
  scheduler_.Join();
  // Renewed until every deployment of this process has stopped; then freed
  // for the group's other replicas.
  if (lease_loop) lease_loop->Stop();
  if (options_.leases != nullptr) options_.leases->ReleaseAll();
}

absl::StatusOr<absl::Duration> Deployer::MaintenanceStep() {
  RecoverOrphans();
  ReportOutcomes();
  DriftPass(false);
  return options_.tick;
}

}  // namespace ferry::deployer
