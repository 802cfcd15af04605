#include "services/deployer/deployment_starter.h"

#include "common/logging/logger.h"
#include "common/status/transient.h"

namespace ferry::deployer {

DeploymentStarter::DeploymentStarter(DeploymentRecords* records, DeploymentScheduler* scheduler,
                                     DeploymentRunner* runner, OutcomeReporter* reporter)
    : records_(records), scheduler_(scheduler), runner_(runner), reporter_(reporter) {}

absl::Status DeploymentStarter::Launch(const v1::Deployment& d, const v1::Plan& spec) {
  if (!scheduler_->ReserveSlot(d.id())) return absl::UnavailableError("the deployer is stopping");
  absl::Status s = records_->Create(d, spec, {});
  if (!s.ok()) {
    scheduler_->ReleaseSlot(d.id());
    return s;
  }
  scheduler_->Spawn(d.id(), [this, d, spec] { Execute(d, spec); });
  return absl::OkStatus();
}

absl::StatusOr<v1::Deployment> DeploymentStarter::Refuse(const v1::Deployment& d, const v1::Plan& spec,
                                                         const std::string& reason) {
  if (!scheduler_->ReserveSlot(d.id())) return absl::UnavailableError("the deployer is stopping");
  // Created FAILED in one write (never PENDING first: recovery would run a
  // PENDING record from this unprepared spec).
  absl::StatusOr<v1::Deployment> out = runner_->CreateRefused(d, spec, reason);
  scheduler_->ReleaseSlot(d.id());
  if (!out.ok()) return out;
  reporter_->ReportOutcomes();
  return out;
}

void DeploymentStarter::Execute(const v1::Deployment& d, const v1::Plan& spec) {
  std::unique_ptr<AppLock> lock = scheduler_->AcquireLock(d.application_id(), d.environment_id());
  // None when stopping, or when another replica holds the environment's
  // lease: the recorded PENDING deployment is then its to run (recovery).
  if (!lock) return;
  // Re-read: another replica may have run it while we waited. What its run
  // reads first (the pin, the applied objects) comes with it: one read, not
  // three (issue #23).
  DeploymentRecords::AppStateRead what;
  what.deployment_id = d.id();
  what.applied = true;
  absl::StatusOr<DeploymentRecords::AppState> read = records_->ReadAppState(d.application_id(), d.environment_id(), what);
  if (!read.ok() || !read->deployment || read->deployment->state() != v1::DEPLOYMENT_STATE_PENDING) return;
  const v1::Deployment current = *read->deployment;
  absl::StatusOr<v1::Deployment> done = runner_->Run(current, spec, &*read);
  if (!done.ok() && !status::IsTransient(done.status())) {
    // Processing it failed for good (not a stop or an outage): fail it with
    // the reason rather than leave it to be recovered into the same error.
    done = runner_->RecordUnprocessable(current, std::string(done.status().message()));
  }
  if (!done.ok()) {
    logging::Warn("deployment interrupted", {{"deployment", d.id()}, {"error", done.status().ToString()}});
    return;
  }
  lock.reset();
  reporter_->ReportOutcomes();
}

}  // namespace ferry::deployer
