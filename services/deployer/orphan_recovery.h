#pragma once

#include "services/deployer/deployment_runner.h"
#include "services/deployer/deployment_scheduler.h"
#include "services/deployer/deployment_store.h"
#include "services/deployer/outcome_reporter.h"

namespace ferry::deployer {

// Finds deployments left PENDING or RUNNING by a deployer that died (no live
// holder of their application's lock) and resumes them on scheduler workers
// (DeploymentRunner::Recover). One whose recovery fails other than
// transiently (e.g. an unreadable stored spec) is recorded FAILED with the
// reason rather than retried forever. Thread-safe.
class OrphanRecovery {
 public:
  OrphanRecovery(DeploymentRecords* records, DeploymentScheduler* scheduler, DeploymentRunner* runner,
                 OutcomeReporter* reporter);

  // Recovers every unfinished deployment no live holder is running.
  void RecoverOrphans();

 private:
  DeploymentRecords* const records_;
  DeploymentScheduler* const scheduler_;
  DeploymentRunner* const runner_;
  OutcomeReporter* const reporter_;
};

}  // namespace ferry::deployer
