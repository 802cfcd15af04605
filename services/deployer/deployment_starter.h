#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "ferry/v1/deployer.pb.h"
#include "ferry/v1/planner.pb.h"
#include "services/deployer/deployment_runner.h"
#include "services/deployer/deployment_scheduler.h"
#include "services/deployer/deployment_store.h"
#include "services/deployer/outcome_reporter.h"

namespace ferry::deployer {

// Records a new deployment and starts it through the scheduler: a slot, then
// a worker that waits for the application's lock, runs it and reports the
// outcome. Thread-safe.
class DeploymentStarter {
 public:
  DeploymentStarter(DeploymentRecords* records, DeploymentScheduler* scheduler, DeploymentRunner* runner,
                    OutcomeReporter* reporter);

  // Records `d` (PENDING) with the plan it executes and runs it in the
  // background. Waits for a slot; UNAVAILABLE when the deployer stops.
  absl::Status Launch(const v1::Deployment& d, const v1::Plan& spec);
  // Records `d` as FAILED at once for `reason` (refused before anything
  // changed) and reports it.
  absl::StatusOr<v1::Deployment> Refuse(const v1::Deployment& d, const v1::Plan& spec, const std::string& reason);

 private:
  void Execute(const v1::Deployment& d, const v1::Plan& spec);

  DeploymentRecords* const records_;
  DeploymentScheduler* const scheduler_;
  DeploymentRunner* const runner_;
  OutcomeReporter* const reporter_;
};

}  // namespace ferry::deployer
