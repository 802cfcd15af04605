#pragma once

#include <map>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "common/concurrency/mutex.h"
#include "ferry/v1/deployer.pb.h"

namespace ferry::deployer {

// The deployer's Prometheus metrics. Thread-safe.
//   ferry_deployments_total{application,environment,result}
//                                              result: succeeded | failed | rolled_back (a failed
//                                              deployment an automatic rollback restored counts as
//                                              rolled_back only, one left failed as failed); the three
//                                              series of an application and environment appear together,
//                                              at its first terminal deployment since the start
//   ferry_deployment_last_result_timestamp_seconds{application,environment,result}
//                                              when a deployment of the application to the environment
//                                              last ended with this result (Unix seconds; what the
//                                              failure alerts read: a counter born at 1 shows no increase)
//   ferry_deployment_duration_seconds          histogram, start to terminal state
//   ferry_drift_events_total                   drifted objects detected
//   ferry_drifted_objects{application,environment}
//                                              objects found drifted at the last drift check and not
//                                              healed since (0 when in sync)
//   ferry_health_checks_total{result}          healthy | unhealthy
//   ferry_deployments_resumed_total            interrupted deployments resumed after a restart
//   ferry_deployments_quarantined_total        deployments quarantined (no progress in N attempts)
//   ferry_plans_not_started_total              plans recorded failed because they could not be started
//   ferry_environment_lease_expiry_timestamp_seconds{environment,holder}
//                                              when this replica's lease of an environment expires (by the
//                                              database's clock; renewed every ttl/3); absent when not held
//   ferry_environment_leases_held              environments whose lease this replica holds
//   ferry_environment_lease_takeovers_total    leases taken over from a replica that stopped renewing
class DeployerMetrics {
 public:
  explicit DeployerMetrics(prometheus::Registry& registry);

  // Deployment `d` (its application and environment) ended in `state` at
  // `at`, `seconds` after it started.
  void DeploymentFinished(const v1::Deployment& d, v1::DeploymentState state, double seconds, absl::Time at);
  void DriftDetected() { drift_->Increment(); }
  // `count` objects of the application in the environment are drifted and not healed.
  void DriftedObjects(const std::string& application, const std::string& environment, size_t count);
  void HealthChecked(bool healthy) { (healthy ? healthy_ : unhealthy_)->Increment(); }
  void DeploymentResumed() { resumed_->Increment(); }
  void DeploymentQuarantined() { quarantined_->Increment(); }
  void PlanNotStarted() { not_started_->Increment(); }
  // This replica holds `env`'s lease until `expires`.
  void LeaseHeld(const std::string& env, const std::string& holder, absl::Time expires);
  void LeaseDropped(const std::string& env);
  void LeaseTakenOver() { takeovers_->Increment(); }

 private:
  prometheus::Family<prometheus::Counter>& deployments_;
  prometheus::Histogram* duration_;
  prometheus::Counter* drift_;
  prometheus::Counter* healthy_;
  prometheus::Counter* unhealthy_;
  prometheus::Counter* resumed_;
  prometheus::Counter* quarantined_;
  prometheus::Counter* not_started_;
  prometheus::Family<prometheus::Gauge>& lease_expiry_;
  prometheus::Family<prometheus::Gauge>& drifted_objects_;
  prometheus::Family<prometheus::Gauge>& last_result_;
  prometheus::Gauge* leases_held_;
  prometheus::Counter* takeovers_;
  ferry::Mutex mu_;
  std::map<std::string, prometheus::Gauge*> lease_gauges_ ABSL_GUARDED_BY(mu_);  // By environment.
};

}  // namespace ferry::deployer
