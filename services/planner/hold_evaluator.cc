#include "services/planner/hold_evaluator.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"

namespace ferry::planner {

std::string AwaitingApprovalMessage(int approvals_recorded) {
  if (approvals_recorded <= 0) return "waiting for ApprovePlan or RejectPlan";
  return absl::StrCat("waiting for ApprovePlan or RejectPlan (", approvals_recorded,
                      approvals_recorded == 1 ? " approval" : " approvals", " recorded)");
}

absl::StatusOr<std::optional<std::string>> HoldEvaluator::PromotionGate(const std::string& app, const v1::Environment& env,
                                                                  const std::string& sha) {
  if (env.promote_from().empty()) return std::optional<std::string>();
  ASSIGN_OR_RETURN(bool ok, plans_->HasSucceeded(app, env.promote_from(), sha));
  if (ok) return std::optional<std::string>();
  return std::optional<std::string>(absl::StrCat("promotion gate: revision ", ShortSha(sha),
                                                 " has not been deployed healthy in environment \"",
                                                 env.promote_from(), "\" yet"));
}

absl::StatusOr<Hold> HoldEvaluator::ComputeHold(const v1::Plan& plan, const v1::Environment& env,
                                                   std::map<std::string, WindowDecision>* windows) {
  Hold hold;
  if (plan.trigger() != v1::PLAN_TRIGGER_ROLLBACK) {
    ASSIGN_OR_RETURN(std::optional<std::string> gate,
                     PromotionGate(plan.application_id(), env, plan.target_revision().sha()));
    if (gate) return Hold{v1::HOLD_REASON_PROMOTION_GATE, *gate};
  }
  if (plan.state() == v1::PLAN_STATE_PENDING) {
    if (plan.hold_reason() == v1::HOLD_REASON_PINNED) return Hold{plan.hold_reason(), plan.hold_message()};
    return Hold{v1::HOLD_REASON_AWAITING_APPROVAL, AwaitingApprovalMessage(plan.approvals_size())};
  }
  for (const std::string& dep_id : plan.after_plan_ids()) {
    std::string id = dep_id;
    absl::StatusOr<v1::Plan> dep = plans_->GetPlan(id);
    for (int hops = 0; dep.ok() && dep->state() == v1::PLAN_STATE_SUPERSEDED && hops < 100; ++hops)
      dep = plans_->GetPlan(id = dep->superseded_by_plan_id());
    if (!dep.ok()) {
      if (absl::IsNotFound(dep.status())) continue;
      return dep.status();
    }
    if (dep->state() != v1::PLAN_STATE_SUCCEEDED) {
      return Hold{v1::HOLD_REASON_DEPENDENCY,
                  absl::StrCat("waiting for plan ", dep->id(), " of application \"", dep->application_id(), "\" (",
                               v1::PlanState_Name(dep->state()), ") to succeed (depends_on)")};
    }
  }
  WindowDecision window;
  if (windows != nullptr && windows->count(env.id())) {
    window = windows->at(env.id());
  } else {
    window = EvaluateSyncWindows(env.sync_windows(), clock_->Now());
    if (windows != nullptr) (*windows)[env.id()] = window;
  }
  if (!window.open) return Hold{v1::HOLD_REASON_SYNC_WINDOW_CLOSED, window.message};
  return hold;
}

absl::StatusOr<int> HoldEvaluator::ReevaluateHolds() {
  ASSIGN_OR_RETURN(std::vector<v1::Plan> plans, plans_->ListUnreleased());
  std::map<std::string, v1::Environment> envs;
  std::map<std::string, WindowDecision> windows;  // one evaluation per environment per pass
  int released = 0;
  for (const v1::Plan& plan : plans) {
    if (!envs.count(plan.environment_id())) {
      absl::StatusOr<v1::Environment> env = catalog_->GetEnvironment(plan.environment_id());
      if (!env.ok()) continue;
      envs[plan.environment_id()] = *env;
    }
    ASSIGN_OR_RETURN(Hold hold, ComputeHold(plan, envs[plan.environment_id()], &windows));
    if (hold.reason == plan.hold_reason() && hold.message == plan.hold_message()) continue;
    absl::StatusOr<v1::Plan> updated = plans_->MutatePlan(plan.id(), [&](v1::Plan& p) -> absl::StatusOr<std::vector<v1::Event>> {
      if (p.state() != plan.state()) return absl::AbortedError("plan changed state meanwhile");
      p.set_hold_reason(hold.reason);
      p.set_hold_message(hold.message);
      *p.mutable_update_time() = events_.Now();
      return std::vector<v1::Event>{};
    });
    if (!updated.ok()) {
      if (absl::IsAborted(updated.status())) continue;
      return updated.status();
    }
    if (updated->state() == v1::PLAN_STATE_APPROVED && updated->hold_reason() == v1::HOLD_REASON_UNSPECIFIED) ++released;
  }
  if (released > 0) notifier_->Notify();
  return released;
}

}  // namespace ferry::planner
