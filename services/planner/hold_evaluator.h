#pragma once

#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/clock/clock.h"
#include "common/concurrency/change_signal.h"
#include "ferry/v1/planner.pb.h"
#include "services/planner/check_gate.h"
#include "services/planner/planner_events.h"
#include "services/planner/planner_store.h"
#include "services/planner/sync_window.h"

namespace ferry::planner {

// Why a plan is not released yet (reason UNSPECIFIED: it is not held).
// A plan whose required check failed is not held but failed: see
// FailedByCheck().
struct Hold {
  v1::HoldReason reason = v1::HOLD_REASON_UNSPECIFIED;
  std::string message;
  // The required checks' verdict, when they were evaluated (kNotRequired
  // otherwise: no required checks, a rollback, or a hold decided before).
  ChecksVerdict checks;

  // A required check failed: the plan must become FAILED with
  // checks.message as its failure.
  bool FailedByCheck() const { return checks.outcome == ChecksVerdict::Outcome::kFailed; }
};

// The hold message of a PENDING plan awaiting approval, with the number of
// approvals recorded so far when there are any.
std::string AwaitingApprovalMessage(int approvals_recorded);

// One job: the hold rules that keep a plan from the deployer, in this order:
// the promotion gate (promote_from), required checks (a failed one fails
// the plan; pending ones hold it, also while it awaits approval), approval
// (and a pin set after a rollback), plans of dependencies (depends_on) and
// sync windows; and re-evaluating the holds of unreleased plans as time,
// check results and other plans move on. Rollback plans skip the promotion
// gate and the required checks (they restore a revision deployed before).
// Holds no state of its own; thread-safe.
// How long an approved plan without a hold may stay unreleased before a hold
// pass releases it itself (its insert's release normally follows at once).
inline constexpr absl::Duration kUnreleasedGrace = absl::Seconds(10);

class HoldEvaluator {
 public:
  // `checks` (the CheckSource of required checks) may be null: required
  // checks then never pass.
  HoldEvaluator(CatalogStore* catalog, PlanStore* plans, const Clock* clock, concurrency::ChangeSignal* notifier,
                CheckSource* checks = nullptr)
      : catalog_(catalog), plans_(plans), clock_(clock), events_(clock), notifier_(notifier), gate_(checks, clock) {}

  // The hold `plan` is under in `env` now. `windows` optionally caches
  // sync-window decisions by environment id, `results` check results.
  absl::StatusOr<Hold> ComputeHold(const v1::Plan& plan, const v1::Environment& env,
                                   std::map<std::string, WindowDecision>* windows = nullptr,
                                   CheckResultsCache* results = nullptr);

  // The promotion gate's message when `sha` of `app` has not succeeded yet
  // in the environment `env` promotes from; none when the gate is open.
  absl::StatusOr<std::optional<std::string>> PromotionGate(const std::string& app, const v1::Environment& env,
                                                           const std::string& sha);

  // Re-evaluates the holds of unreleased plans and releases those whose
  // gates opened (waking plan streams), and fails those whose required
  // check failed, each decision of the checks audited (CheckGate). Returns
  // how many were released. A plan that cannot be evaluated (its checks
  // unreadable) keeps its hold; the first such error is returned after the
  // others were evaluated.
  absl::StatusOr<int> ReevaluateHolds();
  // The same, for the unreleased plans of commit `sha` of `repository_id`
  // only (a check result of that commit arrived).
  absl::StatusOr<int> ReevaluateHoldsOf(const std::string& repository_id, const std::string& sha);

  const CheckGate& check_gate() const { return gate_; }

 private:
  absl::StatusOr<int> Reevaluate(const std::string& repository_id, const std::string& sha);

  CatalogStore* catalog_;
  PlanStore* plans_;
  const Clock* clock_;
  const PlannerEvents events_;
  concurrency::ChangeSignal* notifier_;
  CheckGate gate_;
};

}  // namespace ferry::planner
