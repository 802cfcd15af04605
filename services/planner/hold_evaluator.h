#pragma once

#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/clock/clock.h"
#include "common/concurrency/change_signal.h"
#include "ferry/v1/planner.pb.h"
#include "services/planner/planner_events.h"
#include "services/planner/planner_store.h"
#include "services/planner/sync_window.h"

namespace ferry::planner {

// Why a plan is not released yet (reason UNSPECIFIED: it is not held).
struct Hold {
  v1::HoldReason reason = v1::HOLD_REASON_UNSPECIFIED;
  std::string message;
};

// The hold message of a PENDING plan awaiting approval, with the number of
// approvals recorded so far when there are any.
std::string AwaitingApprovalMessage(int approvals_recorded);

// One job: the hold rules that keep a plan from the deployer, in this order:
// the promotion gate (promote_from), approval (and a pin set after a
// rollback), plans of dependencies (depends_on) and sync windows; and
// re-evaluating the holds of unreleased plans as time and other plans move
// on. Holds no state of its own; thread-safe.
class HoldEvaluator {
 public:
  HoldEvaluator(CatalogStore* catalog, PlanStore* plans, const Clock* clock, concurrency::ChangeSignal* notifier)
      : catalog_(catalog), plans_(plans), clock_(clock), events_(clock), notifier_(notifier) {}

  // The hold `plan` is under in `env` now. `windows` optionally caches
  // sync-window decisions by environment id.
  absl::StatusOr<Hold> ComputeHold(const v1::Plan& plan, const v1::Environment& env,
                                   std::map<std::string, WindowDecision>* windows = nullptr);

  // The promotion gate's message when `sha` of `app` has not succeeded yet
  // in the environment `env` promotes from; none when the gate is open.
  absl::StatusOr<std::optional<std::string>> PromotionGate(const std::string& app, const v1::Environment& env,
                                                           const std::string& sha);

  // Re-evaluates the holds of unreleased plans and releases those whose
  // gates opened (waking plan streams). Returns how many were released.
  absl::StatusOr<int> ReevaluateHolds();

 private:
  CatalogStore* catalog_;
  PlanStore* plans_;
  const Clock* clock_;
  const PlannerEvents events_;
  concurrency::ChangeSignal* notifier_;
};

}  // namespace ferry::planner
