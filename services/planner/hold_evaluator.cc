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
                                                   std::map<std::string, WindowDecision>* windows,
                                                   CheckResultsCache* results) {
  Hold hold;
  ChecksVerdict checks;
  if (plan.trigger() != v1::PLAN_TRIGGER_ROLLBACK) {
    ASSIGN_OR_RETURN(std::optional<std::string> gate,
                     PromotionGate(plan.application_id(), env, plan.target_revision().sha()));
    if (gate) return Hold{v1::HOLD_REASON_PROMOTION_GATE, *gate, {}};
    ASSIGN_OR_RETURN(checks, gate_.Evaluate(env, plan.target_revision(), results, &plan.check_runs()));
    if (checks.outcome == ChecksVerdict::Outcome::kFailed) {
      hold.checks = std::move(checks);
      return hold;
    }
  }
  hold.checks = checks;
  const bool checks_pending = checks.outcome == ChecksVerdict::Outcome::kPending;
  if (plan.state() == v1::PLAN_STATE_PENDING) {
    if (plan.hold_reason() == v1::HOLD_REASON_PINNED) {
      hold.reason = plan.hold_reason();
      hold.message = plan.hold_message();
    } else if (checks_pending) {
      hold.reason = v1::HOLD_REASON_CHECKS_PENDING;
      hold.message = absl::StrCat(checks.message, "; the plan also waits for ApprovePlan or RejectPlan");
    } else {
      hold.reason = v1::HOLD_REASON_AWAITING_APPROVAL;
      hold.message = AwaitingApprovalMessage(plan.approvals_size());
    }
    return hold;
  }
  if (checks_pending) {
    hold.reason = v1::HOLD_REASON_CHECKS_PENDING;
    hold.message = checks.message;
    return hold;
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
      hold.reason = v1::HOLD_REASON_DEPENDENCY;
      hold.message = absl::StrCat("waiting for plan ", dep->id(), " of application \"", dep->application_id(), "\" (",
                                  v1::PlanState_Name(dep->state()), ") to succeed (depends_on)");
      return hold;
    }
  }
  WindowDecision window;
  if (windows != nullptr && windows->count(env.id())) {
    window = windows->at(env.id());
  } else {
    window = EvaluateSyncWindows(env.sync_windows(), clock_->Now());
    if (windows != nullptr) (*windows)[env.id()] = window;
  }
  if (!window.open) {
    hold.reason = v1::HOLD_REASON_SYNC_WINDOW_CLOSED;
    hold.message = window.message;
  }
  return hold;
}

absl::StatusOr<int> HoldEvaluator::ReevaluateHolds() { return Reevaluate("", ""); }

absl::StatusOr<int> HoldEvaluator::ReevaluateHoldsOf(const std::string& repository_id, const std::string& sha) {
  if (sha.empty()) return absl::InvalidArgumentError("sha: is required");
  return Reevaluate(repository_id, sha);
}

absl::StatusOr<int> HoldEvaluator::Reevaluate(const std::string& repository_id, const std::string& sha) {
  ASSIGN_OR_RETURN(std::vector<v1::Plan> plans, plans_->ListUnreleased());
  std::map<std::string, v1::Environment> envs;
  std::map<std::string, WindowDecision> windows;  // one evaluation per environment per pass
  CheckResultsCache results;                      // one ListChecks per commit per pass
  absl::Status first_error;
  int released = 0;
  for (const v1::Plan& plan : plans) {
    if (!sha.empty() && (plan.target_revision().sha() != sha ||
                         (!repository_id.empty() && plan.target_revision().repository_id() != repository_id)))
      continue;
    if (!envs.count(plan.environment_id())) {
      absl::StatusOr<v1::Environment> env = catalog_->GetEnvironment(plan.environment_id());
      if (!env.ok()) continue;
      envs[plan.environment_id()] = *env;
    }
    absl::StatusOr<Hold> computed = ComputeHold(plan, envs[plan.environment_id()], &windows, &results);
    if (!computed.ok()) {
      // This plan keeps its hold; the others are still evaluated.
      if (first_error.ok()) first_error = computed.status();
      continue;
    }
    const Hold& hold = *computed;
    const bool fail = hold.FailedByCheck();
    if (!fail && hold.reason == plan.hold_reason() && hold.message == plan.hold_message()) {
      // Approved without a hold yet never released: the planner stopped (or
      // the release failed) between its insert and its release. Writing it
      // back releases it. A younger one is most likely in its insert's
      // shared release right now (PlanStore::InsertPlan): left to it.
      const absl::Time written_at = absl::FromUnixSeconds(plan.update_time().seconds()) +
                                    absl::Nanoseconds(plan.update_time().nanos());
      if (plan.state() == v1::PLAN_STATE_APPROVED && plan.hold_reason() == v1::HOLD_REASON_UNSPECIFIED &&
          clock_->Now() - written_at >= kUnreleasedGrace) {
        absl::StatusOr<v1::Plan> written =
            plans_->MutatePlan(plan.id(), [&](v1::Plan& p) -> absl::StatusOr<std::vector<v1::Event>> {
              if (p.state() != plan.state() || p.hold_reason() != plan.hold_reason())
                return absl::AbortedError("plan changed meanwhile");
              return std::vector<v1::Event>();
            });
        if (written.ok()) {
          ++released;
        } else if (!absl::IsAborted(written.status()) && first_error.ok()) {
          first_error = written.status();
        }
      }
      continue;
    }
    absl::StatusOr<v1::Plan> updated = plans_->MutatePlan(plan.id(), [&](v1::Plan& p) -> absl::StatusOr<std::vector<v1::Event>> {
      if (p.state() != plan.state()) return absl::AbortedError("plan changed state meanwhile");
      const v1::HoldReason before_reason = p.hold_reason();
      const std::string before_message = p.hold_message();
      if (fail) {
        p.set_state(v1::PLAN_STATE_FAILED);
        p.mutable_failure()->set_message(hold.checks.message);
        p.set_hold_reason(v1::HOLD_REASON_UNSPECIFIED);
        p.set_hold_message("");
      } else {
        p.set_hold_reason(hold.reason);
        p.set_hold_message(hold.message);
      }
      *p.mutable_update_time() = events_.Now();
      return gate_.DecisionEvents(p, hold.checks, before_reason, before_message, /*created=*/false);
    });
    if (!updated.ok()) {
      if (absl::IsAborted(updated.status())) continue;
      return updated.status();
    }
    if (updated->state() == v1::PLAN_STATE_APPROVED && updated->hold_reason() == v1::HOLD_REASON_UNSPECIFIED) ++released;
  }
  if (released > 0) notifier_->Notify();
  if (!first_error.ok()) return first_error;
  return released;
}

}  // namespace ferry::planner
