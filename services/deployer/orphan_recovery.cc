#include "services/deployer/orphan_recovery.h"

#include <map>
#include <memory>

#include "common/logging/logger.h"
#include "services/deployer/app_ids.h"
#include "services/deployer/deployment_state.h"
#include "common/status/transient.h"

namespace ferry::deployer {
OrphanRecovery::OrphanRecovery(DeploymentRecords* records, DeploymentScheduler* scheduler, DeploymentRunner* runner,
                               OutcomeReporter* reporter)
    : records_(records), scheduler_(scheduler), runner_(runner), reporter_(reporter) {}

void OrphanRecovery::RecoverOrphans() {
  absl::StatusOr<std::vector<v1::Deployment>> unfinished = records_->Unfinished();
  if (!unfinished.ok()) {
    logging::Warn("cannot list unfinished deployments", {{"error", unfinished.status().ToString()}});
    return;
  }
  // One per application: an unfinished automatic rollback first (it
  // settles the deployment it rolls back), otherwise the oldest.
  std::map<std::string, v1::Deployment> chosen;
  for (const v1::Deployment& d : *unfinished) {
    std::string key = AppKey(d.application_id(), d.environment_id());
    auto it = chosen.find(key);
    if (it == chosen.end()) {
      chosen.emplace(key, d);
    } else if (d.kind() == v1::DEPLOYMENT_KIND_AUTO_ROLLBACK &&
               it->second.kind() != v1::DEPLOYMENT_KIND_AUTO_ROLLBACK) {
      it->second = d;
    }
  }
  for (const auto& entry : chosen) {
    const v1::Deployment& d = entry.second;  // Not a structured binding: the lambda below captures it.
    if (scheduler_->stopping() || scheduler_->InFlight(d.id())) continue;
    absl::StatusOr<std::unique_ptr<AppLock>> lock = scheduler_->TryLock(d.application_id(), d.environment_id());
    if (!lock.ok() || !*lock) continue;  // Its holder is alive (here or elsewhere).
    std::shared_ptr<AppLock> held(std::move(*lock));
    // Not bounded by max_concurrent_deployments: it holds its application's
    // lock already (a running deployment may be waiting for that lock).
    scheduler_->Spawn(d.id(), [this, d, held] {
      absl::StatusOr<v1::Deployment> current = records_->Get(d.id(), false);
      if (!current.ok() || IsTerminal(current->state())) return;
      absl::StatusOr<v1::Plan> spec = records_->GetSpec(d.id());
      absl::StatusOr<v1::Deployment> done = absl::UnknownError("not recovered");
      if (spec.ok()) {
        logging::Info("recovering deployment",
                      {{"deployment", d.id()}, {"state", v1::DeploymentState_Name(current->state())}});
        done = runner_->Recover(*current, *spec);
      } else {
        done = spec.status();
      }
      if (!done.ok() && !status::IsTransient(done.status())) {
        // Poison: recovering it fails the same way every time. Fail it, so
        // that it no longer holds up its application's later deployments.
        done = runner_->RecordUnprocessable(*current, std::string(done.status().message()));
      }
      if (!done.ok()) {
        logging::Warn("recovery interrupted", {{"deployment", d.id()}, {"error", done.status().ToString()}});
        return;
      }
      reporter_->ReportOutcomes();
    });
  }
}

}  // namespace ferry::deployer
