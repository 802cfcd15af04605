#pragma once

#include <limits>

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock/clock.h"
#include "common/concurrency/change_signal.h"
#include "ferry/v1/planner.pb.h"
#include "services/planner/approval_policy.h"
#include "services/planner/hold_evaluator.h"
#include "services/planner/planner_events.h"
#include "services/planner/planner_store.h"

namespace ferry::planner {

// One job: a plan's life after it was made: reading plans, approve and
// reject (PENDING only), the hand-off to the deployer (released plans,
// acknowledge: at most one deployment per plan) and its result (EXECUTING
// to SUCCEEDED, FAILED or ROLLED_BACK). Holds no state of its own;
// thread-safe.
//
// Approval follows the environment's separation-of-duties rule
// (ApprovalPolicy): each approver is recorded once, the plan is APPROVED at
// the rule's required number of distinct approvals, and the commit's author
// or the plan's requester may be refused (separation_of_duties.h). One
// rejection rejects at once.
//
// Status codes: INVALID_ARGUMENT names the field; NOT_FOUND for unknown
// ids; FAILED_PRECONDITION for a plan whose state forbids the call;
// PERMISSION_DENIED naming the separation-of-duties rule that refuses an
// approver; ALREADY_EXISTS for an approver whose approval is already
// recorded.
class PlanLifecycle {
 public:
  // Called after plans reached SUCCEEDED (plans their promotion; all of a
  // ReportPlanResults call at once); a failure is logged.
  using PromoteFn = std::function<absl::StatusOr<int>(const std::vector<v1::Plan>& succeeded)>;

  PlanLifecycle(CatalogStore* catalog, PlanStore* plans, HoldEvaluator* holds, const ApprovalPolicy* approvals,
                const Clock* clock, concurrency::ChangeSignal* notifier, PromoteFn promote)
      : catalog_(catalog),
        plans_(plans),
        holds_(holds),
        approvals_(approvals),
        events_(clock),
        notifier_(notifier),
        promote_(std::move(promote)) {}

  absl::StatusOr<v1::Plan> GetPlan(const std::string& id, v1::PlanView view);
  absl::StatusOr<v1::ListPlansResponse> ListPlans(const v1::ListPlansRequest& request);
  absl::StatusOr<v1::Plan> ApprovePlan(const std::string& id, const v1::Actor& actor, const std::string& comment);
  absl::StatusOr<v1::Plan> RejectPlan(const std::string& id, const v1::Actor& actor, const std::string& comment);

  // Released plans after `cursor` ("" = oldest unfinished); at most `limit`,
  // and `max_bytes` as PlanStore::ListReleased bounds them.
  absl::StatusOr<std::vector<ReleasedPlan>> ReleasedAfter(const std::string& cursor, int limit,
                                                          int64_t max_bytes = std::numeric_limits<int64_t>::max());
  absl::StatusOr<v1::AcknowledgePlanResponse> AcknowledgePlan(const v1::AcknowledgePlanRequest& request);
  // A terminal result re-evaluates held plans; SUCCEEDED also promotes.
  absl::StatusOr<v1::Plan> ReportPlanResult(const v1::ReportPlanResultRequest& request);
  // Several results, each taken as ReportPlanResult takes it and answered
  // on its own (in order); held plans are re-evaluated once, after all of
  // them, when any was terminal (issue #23: a reporting pass at 10,000
  // applications re-read every unreleased plan once per outcome).
  // INVALID_ARGUMENT for more than kMaxReportedResults.
  static constexpr int kMaxReportedResults = 500;
  absl::StatusOr<std::vector<absl::Status>> ReportPlanResults(
      const std::vector<v1::ReportPlanResultRequest>& requests);

 private:
  CatalogStore* catalog_;
  PlanStore* plans_;
  // Records an ACCESS_DENIED audit event for an approver the rule refused
  // (best effort: a failure is logged).
  void AuditRefusedApproval(const v1::Plan& plan, const v1::Actor& actor, const absl::Status& refusal);
  // ReportPlanResult up to (not including) the promotion of a SUCCEEDED
  // plan and the re-evaluation of held plans: the plan as updated.
  absl::StatusOr<v1::Plan> TakeResult(const v1::ReportPlanResultRequest& request);
  // TakeResult's two halves: the request's own checks, and the change it
  // makes to the plan (which refers to `request`).
  static absl::Status CheckResult(const v1::ReportPlanResultRequest& request);
  PlannerStore::MutateFn ResultChange(const v1::ReportPlanResultRequest& request);
  // Plans the promotions of `succeeded` (promote_), logging a failure.
  void Promote(const std::vector<v1::Plan>& succeeded);
  void ReevaluateHolds();

  HoldEvaluator* holds_;
  const ApprovalPolicy* approvals_;
  const PlannerEvents events_;
  concurrency::ChangeSignal* notifier_;
  const PromoteFn promote_;
};

}  // namespace ferry::planner
