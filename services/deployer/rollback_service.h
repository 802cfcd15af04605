#pragma once

#include "absl/status/statusor.h"
#include "common/clock/clock.h"
#include "ferry/v1/deployer.pb.h"
#include "services/deployer/deployment_starter.h"
#include "services/deployer/deployment_store.h"
#include "services/deployer/plan_consumer.h"
#include "services/deployer/plan_source.h"

namespace ferry::deployer {

// Operator rollbacks: picks the successful deployment to restore (by id, by
// sha, or the last one with other manifests than the live one), deploys it
// through the planner (a ROLLBACK plan) or, when the planner cannot be
// reached, from the stored manifests, and pins the application there.
class RollbackService {
 public:
  // `plans` may be null (then the stored manifests are restored directly).
  RollbackService(DeploymentRecords* records, PinStore* pins, PlanSource* plans, PlanConsumer* consumer,
                  DeploymentStarter* starter, const Clock* clock)
      : records_(records), pins_(pins), plans_(plans), consumer_(consumer), starter_(starter), clock_(clock) {}

  absl::StatusOr<v1::RollbackResponse> Rollback(const v1::RollbackRequest& req);

 private:
  DeploymentRecords* const records_;
  PinStore* const pins_;
  PlanSource* const plans_;
  PlanConsumer* const consumer_;
  DeploymentStarter* const starter_;
  const Clock* const clock_;
};

}  // namespace ferry::deployer
