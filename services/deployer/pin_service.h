#pragma once

#include "absl/status/statusor.h"
#include "common/clock/clock.h"
#include "ferry/v1/deployer.pb.h"
#include "services/deployer/deployment_store.h"
#include "services/deployer/plan_source.h"

namespace ferry::deployer {

// Pins an (application, environment) at a revision (automatic plans are
// then skipped) and unpins it (asking the planner to plan again).
class PinService {
 public:
  // `plans` may be null (then no refresh is asked for).
  PinService(DeploymentRecords* records, PinStore* pins, PlanSource* plans, const Clock* clock)
      : records_(records), pins_(pins), plans_(plans), clock_(clock) {}

  // Pins at req.sha, or at the live revision when it is empty.
  absl::StatusOr<v1::PinState> Pin(const v1::PinRequest& req);
  absl::StatusOr<v1::PinState> Unpin(const v1::UnpinRequest& req);

 private:
  DeploymentRecords* const records_;
  PinStore* const pins_;
  PlanSource* const plans_;
  const Clock* const clock_;
};

}  // namespace ferry::deployer
