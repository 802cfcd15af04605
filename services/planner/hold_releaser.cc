#include "services/planner/hold_releaser.h"

#include "common/logging/logger.h"

namespace ferry::planner {

namespace {

concurrency::LoopOptions HoldReleaserOptions(absl::Duration interval) {
  concurrency::LoopOptions options;
  options.first_run_after = interval;
  return options;
}

}  // namespace

HoldReleaser::HoldReleaser(HoldEvaluator* holds, absl::Duration interval, const WaitableClock* clock)
    : holds_(holds),
      interval_(interval),
      loop_("hold-releaser", [this] { return Step(); }, HoldReleaserOptions(interval), clock) {}

absl::StatusOr<absl::Duration> HoldReleaser::Step() {
  absl::StatusOr<int> released = holds_->ReevaluateHolds();
  if (!released.ok()) logging::Warn("re-evaluating held plans failed", {{"error", released.status().ToString()}});
  return interval_;
}

}  // namespace ferry::planner
