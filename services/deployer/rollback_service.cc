#include "services/deployer/rollback_service.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "services/deployer/app_ids.h"
#include "services/deployer/audit_events.h"
#include "services/deployer/deployment_runner.h"

namespace ferry::deployer {

absl::StatusOr<v1::RollbackResponse> RollbackService::Rollback(const v1::RollbackRequest& req) {
  absl::Status ids = RequireIds(req.application_id(), req.environment_id());
  if (!ids.ok()) return ids;
  if (req.actor().id().empty()) return absl::InvalidArgumentError("actor.id is required");
  absl::StatusOr<std::optional<ManagedApp>> managed = records_->GetManagedApp(req.application_id(), req.environment_id());
  if (!managed.ok()) return managed.status();
  if (!managed->has_value() || (*managed)->live_deployment_id.empty()) {
    return absl::FailedPreconditionError("application has no successful deployment in this environment");
  }
  absl::StatusOr<v1::Deployment> live = records_->Get((*managed)->live_deployment_id, false);
  if (!live.ok()) return live.status();
  absl::StatusOr<std::vector<v1::Deployment>> good = records_->Succeeded(req.application_id(), req.environment_id());
  if (!good.ok()) return good.status();
  std::optional<v1::Deployment> target;
  if (req.target_case() == v1::RollbackRequest::kDeploymentId) {
    for (const v1::Deployment& g : *good) {
      if (g.id() == req.deployment_id()) target = g;
    }
    if (!target) {
      return absl::FailedPreconditionError(
          absl::StrCat("deployment_id: \"", req.deployment_id(), "\" is not a successful deployment of this application"));
    }
  } else if (req.target_case() == v1::RollbackRequest::kSha) {
    for (const v1::Deployment& g : *good) {
      if (g.revision().sha() == req.sha()) {
        target = g;
        break;
      }
    }
    if (!target) {
      return absl::FailedPreconditionError(absl::StrCat("sha: no successful deployment deployed ", req.sha()));
    }
  } else {
    bool past_live = false;
    for (const v1::Deployment& g : *good) {
      if (g.id() == live->id()) {
        past_live = true;
        continue;
      }
      if (past_live && g.manifests_digest() != live->manifests_digest()) {
        target = g;
        break;
      }
    }
    if (!target) return absl::FailedPreconditionError("no earlier successful deployment to roll back to");
  }
  if (target->id() == live->id() ||
      (target->manifests_digest() == live->manifests_digest() && target->revision().sha() == live->revision().sha())) {
    return absl::FailedPreconditionError(absl::StrCat("deployment ", target->id(), " is already live"));
  }
  v1::RollbackResponse out;
  std::string deployment_id;
  bool via_planner = false;
  if (plans_ != nullptr) {
    v1::PlanRevisionRequest pr;
    pr.set_application_id(req.application_id());
    pr.set_environment_id(req.environment_id());
    pr.mutable_revision()->set_sha(target->revision().sha());
    pr.set_trigger(v1::PLAN_TRIGGER_ROLLBACK);
    *pr.mutable_actor() = req.actor();
    pr.set_comment(req.comment());
    pr.set_approve(true);
    pr.set_rollback_to_deployment_id(target->id());
    absl::StatusOr<v1::PlanRevisionResponse> planned = plans_->PlanRevision(pr);
    if (planned.ok()) {
      if (planned->up_to_date()) return absl::FailedPreconditionError("the planner finds nothing to change: already live");
      via_planner = true;
      out.set_plan_id(planned->plan().id());
      absl::StatusOr<std::string> id = consumer_->HandlePlan(planned->plan());
      if (!id.ok()) return id.status();
      deployment_id = *id;
    } else if (planned.status().code() != absl::StatusCode::kUnavailable &&
               planned.status().code() != absl::StatusCode::kDeadlineExceeded &&
               planned.status().code() != absl::StatusCode::kUnimplemented) {
      return planned.status();
    }
  }
  if (!via_planner) {
    // The planner cannot be reached: restore the stored manifests directly.
    absl::StatusOr<v1::Plan> spec = records_->GetSpec(target->id());
    if (!spec.ok()) return spec.status();
    v1::Deployment d;
    d.set_id(DeploymentRunner::NewId());
    d.set_application_id(req.application_id());
    d.set_environment_id(req.environment_id());
    d.set_kind(v1::DEPLOYMENT_KIND_ROLLBACK);
    d.set_state(v1::DEPLOYMENT_STATE_PENDING);
    *d.mutable_revision() = target->revision();
    *d.mutable_previous_revision() = live->revision();
    d.set_manifests_digest(target->manifests_digest());
    *d.mutable_actor() = req.actor();
    d.set_restored_deployment_id(target->id());
    d.set_message(req.comment());
    *d.mutable_create_time() = ToTimestamp(clock_->Now());
    absl::Status launched = starter_->Launch(d, *spec);
    if (!launched.ok()) return launched;
    deployment_id = d.id();
  }
  v1::PinState pin;
  pin.set_application_id(req.application_id());
  pin.set_environment_id(req.environment_id());
  pin.set_pinned(true);
  pin.set_sha(target->revision().sha());
  *pin.mutable_actor() = req.actor();
  pin.set_reason(req.comment().empty() ? "rollback" : req.comment());
  *pin.mutable_time() = ToTimestamp(clock_->Now());
  pin.set_deployment_id(deployment_id);
  absl::Status s = pins_->SavePin(
      pin, {AppEvent(v1::AUDIT_ACTION_PINNED, req.application_id(), req.environment_id(), req.actor(),
                     absl::StrCat("rolled back to ", pin.sha(), " and pinned: ", pin.reason()),
                     // Not the deployment alone: a rollback the planner holds
                     // (sync window) has none yet, and every such rollback
                     // had the key "rollback//pinned".
                     absl::StrCat("rollback/", AppKey(req.application_id(), req.environment_id()), "/",
                                  via_planner ? out.plan_id() : deployment_id, "/pinned/",
                                  absl::ToUnixNanos(clock_->Now())),
                     {{"sha", pin.sha()}, {"deployment_id", deployment_id}, {"restored", target->id()}})});
  if (!s.ok()) return s;
  *out.mutable_pin() = pin;
  if (!deployment_id.empty()) {
    absl::StatusOr<v1::Deployment> d = records_->Get(deployment_id, false);
    if (d.ok()) *out.mutable_deployment() = *d;
  }
  return out;
}

}  // namespace ferry::deployer
