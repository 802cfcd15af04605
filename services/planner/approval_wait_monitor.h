#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "common/concurrency/background_loop.h"
#include "services/planner/planner_metrics.h"
#include "services/planner/planner_store.h"

namespace ferry::planner {

// One job: measuring the plans waiting for approval (state PENDING), per
// application and environment, into PlannerMetrics' gauges
// ferry_plans_awaiting_approval and ferry_plan_approval_wait_seconds (the
// age of the oldest), every `interval` on a background loop (the first pass
// at Start()). The "approval stuck" alert rule reads them. A failed pass is
// logged and retried after the interval, keeping the last figures.
// Thread-safe; Stop() is idempotent.
class ApprovalWaitMonitor {
 public:
  // `clock` (for ages and the waits) must outlive the monitor.
  ApprovalWaitMonitor(PlanStore* plans, PlannerMetrics* metrics, const WaitableClock* clock, absl::Duration interval);
  void Start() { loop_.Start(); }
  void Stop() { loop_.Stop(); }

  // One pass: reads every PENDING plan and sets the gauges.
  absl::Status MeasureOnce();

 private:
  absl::StatusOr<absl::Duration> Step();

  PlanStore* const plans_;
  PlannerMetrics* const metrics_;
  const WaitableClock* const clock_;
  const absl::Duration interval_;
  concurrency::BackgroundLoop loop_;
};

}  // namespace ferry::planner
