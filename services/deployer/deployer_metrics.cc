#include "services/deployer/deployer_metrics.h"

namespace ferry::deployer {

DeployerMetrics::DeployerMetrics(prometheus::Registry& registry)
    : deployments_(prometheus::BuildCounter()
                       .Name("ferry_deployments_total")
                       .Help("Deployments that reached a terminal state, by result")
                       .Register(registry)),
      lease_expiry_(prometheus::BuildGauge()
                        .Name("ferry_environment_lease_expiry_timestamp_seconds")
                        .Help("When this replica's lease of an environment expires unless renewed (Unix seconds)")
                        .Register(registry)),
      drifted_objects_(prometheus::BuildGauge()
                           .Name("ferry_drifted_objects")
                           .Help("Objects found drifted at the last drift check and not healed since")
                           .Register(registry)),
      last_result_(prometheus::BuildGauge()
                       .Name("ferry_deployment_last_result_timestamp_seconds")
                       .Help("When a deployment of the application to the environment last ended with this result "
                             "(Unix seconds)")
                       .Register(registry)) {
  leases_held_ = &prometheus::BuildGauge()
                      .Name("ferry_environment_leases_held")
                      .Help("Environments whose lease this deployer replica holds")
                      .Register(registry)
                      .Add({});
  takeovers_ = &prometheus::BuildCounter()
                    .Name("ferry_environment_lease_takeovers_total")
                    .Help("Environment leases taken over from a replica that stopped renewing")
                    .Register(registry)
                    .Add({});
  duration_ = &prometheus::BuildHistogram()
                   .Name("ferry_deployment_duration_seconds")
                   .Help("Time from a deployment's start to its terminal state")
                   .Register(registry)
                   .Add({}, prometheus::Histogram::BucketBoundaries{0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800});
  drift_ = &prometheus::BuildCounter()
                .Name("ferry_drift_events_total")
                .Help("Drifted objects detected by drift detection")
                .Register(registry)
                .Add({});
  auto& health = prometheus::BuildCounter()
                     .Name("ferry_health_checks_total")
                     .Help("Object health checks, by result")
                     .Register(registry);
  healthy_ = &health.Add({{"result", "healthy"}});
  unhealthy_ = &health.Add({{"result", "unhealthy"}});
  resumed_ = &prometheus::BuildCounter()
                  .Name("ferry_deployments_resumed_total")
                  .Help("Deployments interrupted by a deployer restart and resumed")
                  .Register(registry)
                  .Add({});
  quarantined_ = &prometheus::BuildCounter()
                      .Name("ferry_deployments_quarantined_total")
                      .Help("Deployments failed after attempts that made no progress")
                      .Register(registry)
                      .Add({});
  not_started_ = &prometheus::BuildCounter()
                      .Name("ferry_plans_not_started_total")
                      .Help("Plans recorded failed because they could not be started")
                      .Register(registry)
                      .Add({});
}

void DeployerMetrics::DeploymentFinished(const v1::Deployment& d, v1::DeploymentState state, double seconds,
                                         absl::Time at) {
  const char* result = state == v1::DEPLOYMENT_STATE_SUCCEEDED     ? "succeeded"
                       : state == v1::DEPLOYMENT_STATE_ROLLED_BACK ? "rolled_back"
                                                                   : "failed";
  // All three results at once, so that the next change of any of them is an
  // increase a rule can see (a series born at 1 shows no increase).
  for (const char* r : {"succeeded", "failed", "rolled_back"}) {
    deployments_.Add({{"application", d.application_id()}, {"environment", d.environment_id()}, {"result", r}});
  }
  deployments_.Add({{"application", d.application_id()}, {"environment", d.environment_id()}, {"result", result}})
      .Increment();
  last_result_.Add({{"application", d.application_id()}, {"environment", d.environment_id()}, {"result", result}})
      .Set(absl::ToDoubleSeconds(at - absl::UnixEpoch()));
  duration_->Observe(seconds);
}

void DeployerMetrics::DriftedObjects(const std::string& application, const std::string& environment, size_t count) {
  drifted_objects_.Add({{"application", application}, {"environment", environment}})
      .Set(static_cast<double>(count));
}

void DeployerMetrics::LeaseHeld(const std::string& env, const std::string& holder, absl::Time expires) {
  ferry::MutexLock l(&mu_);
  prometheus::Gauge*& g = lease_gauges_[env];
  if (g == nullptr) g = &lease_expiry_.Add({{"environment", env}, {"holder", holder}});
  g->Set(absl::ToDoubleSeconds(expires - absl::UnixEpoch()));
  leases_held_->Set(static_cast<double>(lease_gauges_.size()));
}

void DeployerMetrics::LeaseDropped(const std::string& env) {
  ferry::MutexLock l(&mu_);
  auto it = lease_gauges_.find(env);
  if (it == lease_gauges_.end()) return;
  lease_expiry_.Remove(it->second);
  lease_gauges_.erase(it);
  leases_held_->Set(static_cast<double>(lease_gauges_.size()));
}

}  // namespace ferry::deployer
