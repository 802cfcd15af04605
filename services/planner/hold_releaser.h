#pragma once

#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "common/concurrency/background_loop.h"
#include "services/planner/hold_evaluator.h"

namespace ferry::planner {

// One job: re-evaluating held plans (sync windows open with time, promotion
// gates and dependencies with other plans) every `interval` on a background
// loop; the first run is `interval` after Start(). A failed pass is logged
// and retried after the interval. Thread-safe; Stop() is idempotent.
class HoldReleaser {
 public:
  // `clock` (for the waits) must outlive the releaser; the system clock when null.
  HoldReleaser(HoldEvaluator* holds, absl::Duration interval, const WaitableClock* clock = nullptr);
  void Start() { loop_.Start(); }
  void Stop() { loop_.Stop(); }

 private:
  absl::StatusOr<absl::Duration> Step();

  HoldEvaluator* holds_;
  const absl::Duration interval_;
  concurrency::BackgroundLoop loop_;
};

}  // namespace ferry::planner
