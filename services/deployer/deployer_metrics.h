#pragma once

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "ferry/v1/deployer.pb.h"

namespace ferry::deployer {

// The deployer's Prometheus metrics. Thread-safe.
//   ferry_deployments_total{result}            succeeded | failed | rolled_back
//   ferry_deployment_duration_seconds          histogram, start to terminal state
//   ferry_drift_events_total                   drifted objects detected
//   ferry_health_checks_total{result}          healthy | unhealthy
//   ferry_deployments_resumed_total            interrupted deployments resumed after a restart
//   ferry_deployments_quarantined_total        deployments quarantined (no progress in N attempts)
//   ferry_plans_not_started_total              plans recorded failed because they could not be started
class DeployerMetrics {
 public:
  explicit DeployerMetrics(prometheus::Registry& registry);

  void DeploymentFinished(v1::DeploymentState state, double seconds);
  void DriftDetected() { drift_->Increment(); }
  void HealthChecked(bool healthy) { (healthy ? healthy_ : unhealthy_)->Increment(); }
  void DeploymentResumed() { resumed_->Increment(); }
  void DeploymentQuarantined() { quarantined_->Increment(); }
  void PlanNotStarted() { not_started_->Increment(); }

 private:
  prometheus::Family<prometheus::Counter>& deployments_;
  prometheus::Histogram* duration_;
  prometheus::Counter* drift_;
  prometheus::Counter* healthy_;
  prometheus::Counter* unhealthy_;
  prometheus::Counter* resumed_;
  prometheus::Counter* quarantined_;
  prometheus::Counter* not_started_;
};

}  // namespace ferry::deployer
