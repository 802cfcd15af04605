#include "services/planner/plan_lifecycle.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/api/page_size.h"
#include "common/logging/logger.h"
#include "common/status/status_macros.h"
#include "services/planner/plan_view.h"
#include "services/planner/separation_of_duties.h"

namespace ferry::planner {
namespace {

bool IsTerminal(v1::PlanState s) {
  return s == v1::PLAN_STATE_REJECTED || s == v1::PLAN_STATE_SUCCEEDED || s == v1::PLAN_STATE_FAILED ||
         s == v1::PLAN_STATE_ROLLED_BACK || s == v1::PLAN_STATE_SUPERSEDED;
}

}  // namespace

absl::StatusOr<v1::Plan> PlanLifecycle::GetPlan(const std::string& id, v1::PlanView view) {
  ASSIGN_OR_RETURN(v1::Plan plan, plans_->GetPlan(id));
  if (view == v1::PLAN_VIEW_BASIC) ToBasicView(plan);
  return plan;
}

absl::StatusOr<v1::ListPlansResponse> PlanLifecycle::ListPlans(const v1::ListPlansRequest& request) {
  ASSIGN_OR_RETURN(int size, api::PageSize(request.page_size()));
  PlanFilter f;
  f.application_id = request.application_id();
  f.environment_id = request.environment_id();
  for (int s : request.states()) f.states.push_back(static_cast<v1::PlanState>(s));
  f.limit = size;
  ASSIGN_OR_RETURN(f.before_seq, api::SequencePageToken(request.page_token(), "not a token from ListPlans"));
  ASSIGN_OR_RETURN(PlanPage page, plans_->ListPlans(f));
  v1::ListPlansResponse out;
  for (auto& p : page.plans) {
    if (request.view() != v1::PLAN_VIEW_FULL) ToBasicView(p);
    *out.add_plans() = std::move(p);
  }
  if (page.more) out.set_next_page_token(absl::StrCat(page.last_seq));
  return out;
}

absl::StatusOr<v1::Plan> PlanLifecycle::ApprovePlan(const std::string& id, const v1::Actor& actor, const std::string& comment) {
  if (actor.id().empty()) return absl::InvalidArgumentError("actor.id: is required");
  ASSIGN_OR_RETURN(v1::Plan current, plans_->GetPlan(id));
  if (current.state() != v1::PLAN_STATE_PENDING)
    return absl::FailedPreconditionError(
        absl::StrCat("plan ", id, " is ", v1::PlanState_Name(current.state()), ", not PENDING"));
  // Separation of duties: requester and author are fixed when the plan is
  // made, so the check needs no lock.
  const auth::ApprovalRule rule = approvals_->RuleFor(current.environment_id());
  const int required = std::max(1, rule.required);
  if (absl::Status allowed = CheckSeparationOfDuties(rule, current, actor); !allowed.ok()) {
    AuditRefusedApproval(current, actor, allowed);
    return allowed;
  }
  ASSIGN_OR_RETURN(v1::Environment env, catalog_->GetEnvironment(current.environment_id()));
  if (current.trigger() != v1::PLAN_TRIGGER_ROLLBACK) {
    ASSIGN_OR_RETURN(std::optional<std::string> gate,
                     holds_->PromotionGate(current.application_id(), env, current.target_revision().sha()));
    if (gate) return absl::FailedPreconditionError(*gate);
  }
  v1::Plan approved = current;
  approved.set_state(v1::PLAN_STATE_APPROVED);
  ASSIGN_OR_RETURN(Hold hold, holds_->ComputeHold(approved, env));
  if (hold.FailedByCheck()) {
    // The plan fails (audited) as the hold re-evaluation would fail it.
    absl::StatusOr<int> reevaluated =
        holds_->ReevaluateHoldsOf(current.target_revision().repository_id(), current.target_revision().sha());
    if (!reevaluated.ok())
      logging::Warn("failing a plan by its check failed", {{"plan", id}, {"error", reevaluated.status().ToString()}});
    return absl::FailedPreconditionError(absl::StrCat("plan ", id, " cannot be approved: ", hold.checks.message));
  }
  v1::PlanDecision decision;
  *decision.mutable_actor() = actor;
  decision.set_comment(comment);
  *decision.mutable_time() = events_.Now();
  decision.set_automatic(false);
  auto subject = [&](v1::Event& e, const v1::Plan& p) {
    e.mutable_subject()->set_plan_id(id);
    e.mutable_subject()->set_application_id(p.application_id());
    e.mutable_subject()->set_environment_id(p.environment_id());
    e.mutable_subject()->set_commit_sha(p.target_revision().sha());
  };
  ASSIGN_OR_RETURN(v1::Plan plan, plans_->RecordApproval(id, decision, [&](v1::Plan& p, bool added) -> absl::StatusOr<std::vector<v1::Event>> {
    if (p.state() != v1::PLAN_STATE_PENDING)
      return absl::FailedPreconditionError(absl::StrCat("plan ", id, " is ", v1::PlanState_Name(p.state()), ", not PENDING"));
    const int recorded = p.approvals_size();
    if (!added)
      return absl::AlreadyExistsError(absl::StrCat("plan ", id, ": \"", actor.id(),
                                                   "\" has already approved it, and an approver counts once (",
                                                   ApprovalCount(recorded, required), " recorded)"));
    *p.mutable_update_time() = events_.Now();
    if (recorded < required) {
      // Not yet: the approval is recorded and the plan stays PENDING.
      if (p.hold_reason() == v1::HOLD_REASON_AWAITING_APPROVAL) p.set_hold_message(AwaitingApprovalMessage(recorded));
      v1::Event e = events_.Make(v1::AUDIT_ACTION_PLAN_APPROVAL_RECORDED, actor,
                                 absl::StrCat("plan ", id, ": approval by ", actor.id(), " recorded, ",
                                              ApprovalCount(recorded, required), comment.empty() ? "" : ": " + comment),
                                 "plan-approval-recorded/" + id);
      subject(e, p);
      auto& fields = *e.mutable_details()->mutable_fields();
      fields["approvals_recorded"].set_number_value(recorded);
      fields["approvals_required"].set_number_value(required);
      return std::vector<v1::Event>{e};
    }
    const v1::HoldReason before_reason = p.hold_reason();
    const std::string before_message = p.hold_message();
    p.set_state(v1::PLAN_STATE_APPROVED);
    *p.mutable_decision() = decision;
    p.set_hold_reason(hold.reason);
    p.set_hold_message(hold.message);
    v1::Event e = events_.Make(v1::AUDIT_ACTION_PLAN_APPROVED, actor,
                               absl::StrCat("plan ", id, " approved by ", actor.id(),
                                            required > 1 ? " (" + ApprovalCount(recorded, required) + ")" : "",
                                            comment.empty() ? "" : ": " + comment),
                               "plan-approved/" + id);
    subject(e, p);
    if (required > 1) {
      auto& fields = *e.mutable_details()->mutable_fields();
      fields["approvals_recorded"].set_number_value(recorded);
      fields["approvals_required"].set_number_value(required);
    }
    std::vector<v1::Event> events{e};
    for (v1::Event& c : holds_->check_gate().DecisionEvents(p, hold.checks, before_reason, before_message,
                                                            /*created=*/false))
      events.push_back(std::move(c));
    return events;
  }));
  notifier_->Notify();
  return plan;
}

void PlanLifecycle::AuditRefusedApproval(const v1::Plan& plan, const v1::Actor& actor, const absl::Status& refusal) {
  v1::Event e = events_.Make(v1::AUDIT_ACTION_ACCESS_DENIED, actor,
                             absl::StrCat("approval refused: ", refusal.message()), "approval-refused/" + plan.id());
  e.mutable_subject()->set_plan_id(plan.id());
  e.mutable_subject()->set_application_id(plan.application_id());
  e.mutable_subject()->set_environment_id(plan.environment_id());
  e.mutable_subject()->set_commit_sha(plan.target_revision().sha());
  (*e.mutable_details()->mutable_fields())["permission"].set_string_value("approve");
  absl::Status recorded = catalog_->RecordEvents({e});
  if (!recorded.ok())
    logging::Warn("recording a refused approval failed", {{"plan", plan.id()}, {"error", recorded.ToString()}});
}

absl::StatusOr<v1::Plan> PlanLifecycle::RejectPlan(const std::string& id, const v1::Actor& actor, const std::string& comment) {
  if (actor.id().empty()) return absl::InvalidArgumentError("actor.id: is required");
  return plans_->MutatePlan(id, [&](v1::Plan& p) -> absl::StatusOr<std::vector<v1::Event>> {
    if (p.state() != v1::PLAN_STATE_PENDING)
      return absl::FailedPreconditionError(absl::StrCat("plan ", id, " is ", v1::PlanState_Name(p.state()), ", not PENDING"));
    p.set_state(v1::PLAN_STATE_REJECTED);
    p.set_hold_reason(v1::HOLD_REASON_UNSPECIFIED);
    p.set_hold_message("");
    v1::PlanDecision* d = p.mutable_decision();
    *d->mutable_actor() = actor;
    d->set_comment(comment);
    *d->mutable_time() = events_.Now();
    *p.mutable_update_time() = events_.Now();
    v1::Event e = events_.Make(v1::AUDIT_ACTION_PLAN_REJECTED, actor,
                            absl::StrCat("plan ", id, " rejected by ", actor.id(), comment.empty() ? "" : ": " + comment),
                            "plan-rejected/" + id);
    e.mutable_subject()->set_plan_id(id);
    e.mutable_subject()->set_application_id(p.application_id());
    e.mutable_subject()->set_environment_id(p.environment_id());
    e.mutable_subject()->set_commit_sha(p.target_revision().sha());
    return std::vector<v1::Event>{e};
  });
}

absl::StatusOr<std::vector<ReleasedPlan>> PlanLifecycle::ReleasedAfter(const std::string& cursor, int limit,
                                                                       int64_t max_bytes) {
  int64_t after = 0;
  if (cursor.empty()) {
    ASSIGN_OR_RETURN(after, plans_->OldestUnfinishedRelease());
  } else if (!absl::SimpleAtoi(cursor, &after) || after < 0) {
    return absl::InvalidArgumentError("cursor: not a cursor from WatchApprovedPlans");
  }
  return plans_->ListReleased(after, limit, max_bytes);
}

absl::StatusOr<v1::AcknowledgePlanResponse> PlanLifecycle::AcknowledgePlan(const v1::AcknowledgePlanRequest& request) {
  if (request.plan_id().empty()) return absl::InvalidArgumentError("plan_id: is required");
  if (request.deployment_id().empty()) return absl::InvalidArgumentError("deployment_id: is required");
  v1::AcknowledgePlanResponse response;
  ASSIGN_OR_RETURN(v1::Plan plan, plans_->MutatePlanQuietly(request.plan_id(), [&](v1::Plan& p) -> absl::StatusOr<std::vector<v1::Event>> {
    response = v1::AcknowledgePlanResponse();  // the last call's answer (MutatePlanQuietly may call twice)
    if (p.state() == v1::PLAN_STATE_APPROVED && p.hold_reason() == v1::HOLD_REASON_UNSPECIFIED) {
      p.set_state(v1::PLAN_STATE_EXECUTING);
      p.set_deployment_id(request.deployment_id());
      *p.mutable_update_time() = events_.Now();
      response.set_proceed(true);
    } else if (p.state() == v1::PLAN_STATE_EXECUTING && p.deployment_id() == request.deployment_id()) {
      response.set_proceed(true);  // idempotent retry
    } else if (p.state() == v1::PLAN_STATE_EXECUTING || !p.deployment_id().empty()) {
      response.set_reason(absl::StrCat("plan already claimed by deployment ", p.deployment_id()));
    } else if (p.state() == v1::PLAN_STATE_APPROVED) {
      response.set_reason("plan is held: " + p.hold_message());
    } else {
      response.set_reason(absl::StrCat("plan is ", v1::PlanState_Name(p.state()),
                                       p.superseded_by_plan_id().empty() ? "" : " by " + p.superseded_by_plan_id()));
    }
    return std::vector<v1::Event>{};
  }));
  response.set_state(plan.state());
  return response;
}

absl::Status PlanLifecycle::CheckResult(const v1::ReportPlanResultRequest& request) {
  const v1::PlanState state = request.state();
  if (state != v1::PLAN_STATE_EXECUTING && state != v1::PLAN_STATE_SUCCEEDED && state != v1::PLAN_STATE_FAILED &&
      state != v1::PLAN_STATE_ROLLED_BACK)
    return absl::InvalidArgumentError("state: must be EXECUTING, SUCCEEDED, FAILED or ROLLED_BACK");
  if (request.deployment_id().empty()) return absl::InvalidArgumentError("deployment_id: is required");
  return absl::OkStatus();
}

PlannerStore::MutateFn PlanLifecycle::ResultChange(const v1::ReportPlanResultRequest& request) {
  return [this, &request](v1::Plan& p) -> absl::StatusOr<std::vector<v1::Event>> {
    const v1::PlanState state = request.state();
    if (p.deployment_id() != request.deployment_id())
      return absl::FailedPreconditionError(absl::StrCat("plan ", p.id(), " is not executed by deployment ",
                                                        request.deployment_id()));
    if (p.state() == state) return std::vector<v1::Event>{};  // repeated report
    if (p.state() != v1::PLAN_STATE_EXECUTING)
      return absl::FailedPreconditionError(absl::StrCat("plan ", p.id(), " is ", v1::PlanState_Name(p.state()),
                                                        "; only an EXECUTING plan takes a result"));
    p.set_state(state);
    if (state == v1::PLAN_STATE_FAILED || state == v1::PLAN_STATE_ROLLED_BACK)
      p.mutable_failure()->set_message(request.message());
    *p.mutable_update_time() = events_.Now();
    return std::vector<v1::Event>{};
  };
}

absl::StatusOr<v1::Plan> PlanLifecycle::TakeResult(const v1::ReportPlanResultRequest& request) {
  RETURN_IF_ERROR(CheckResult(request));
  return plans_->MutatePlanQuietly(request.plan_id(), ResultChange(request));
}

void PlanLifecycle::Promote(const std::vector<v1::Plan>& succeeded) {
  if (succeeded.empty()) return;
  absl::StatusOr<int> promoted = promote_(succeeded);
  if (!promoted.ok())
    logging::Warn("planning the promotion failed",
                  {{"plan", succeeded.front().id()}, {"plans", static_cast<int>(succeeded.size())},
                   {"error", promoted.status().ToString()}});
}

void PlanLifecycle::ReevaluateHolds() {
  absl::StatusOr<int> released = holds_->ReevaluateHolds();
  if (!released.ok()) logging::Warn("re-evaluating held plans failed", {{"error", released.status().ToString()}});
}

absl::StatusOr<v1::Plan> PlanLifecycle::ReportPlanResult(const v1::ReportPlanResultRequest& request) {
  ASSIGN_OR_RETURN(v1::Plan plan, TakeResult(request));
  if (plan.state() == v1::PLAN_STATE_SUCCEEDED) Promote({plan});
  notifier_->Notify();
  if (IsTerminal(plan.state())) ReevaluateHolds();
  ToBasicView(plan);
  return plan;
}

absl::StatusOr<std::vector<absl::Status>> PlanLifecycle::ReportPlanResults(
    const std::vector<v1::ReportPlanResultRequest>& requests) {
  if (requests.size() > static_cast<size_t>(kMaxReportedResults))
    return absl::InvalidArgumentError(absl::StrCat("results: at most ", kMaxReportedResults, " in one call, got ",
                                                   requests.size()));
  std::vector<absl::Status> out;
  out.reserve(requests.size());
  bool terminal = false;
  std::vector<v1::Plan> succeeded;
  // The valid ones taken together: their quiet writes in one statement
  // where the store can (issue #23).
  std::vector<PlannerStore::PlanChange> changes;
  std::vector<size_t> changed;  // index in requests of each change
  for (size_t i = 0; i < requests.size(); ++i) {
    out.push_back(CheckResult(requests[i]));
    if (!out.back().ok()) continue;
    changes.emplace_back(requests[i].plan_id(), ResultChange(requests[i]));
    changed.push_back(i);
  }
  std::vector<absl::StatusOr<v1::Plan>> taken = plans_->MutatePlansQuietly(changes);
  for (size_t k = 0; k < taken.size() && k < changed.size(); ++k) {
    absl::StatusOr<v1::Plan>& plan = taken[k];
    out[changed[k]] = plan.status();
    if (plan.ok() && IsTerminal(plan->state())) terminal = true;
    if (plan.ok() && plan->state() == v1::PLAN_STATE_SUCCEEDED) succeeded.push_back(*std::move(plan));
  }
  Promote(succeeded);
  notifier_->Notify();
  if (terminal) ReevaluateHolds();
  return out;
}

}  // namespace ferry::planner
