#pragma once

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "services/planner/check_source.h"
#include "services/planner/cursor_stream_loop.h"
#include "services/planner/hold_evaluator.h"
#include "services/planner/planner_store.h"

namespace ferry::planner {

// One job: consuming the repo-watcher's WatchReviewEvents stream on a
// background loop, so that a check result re-evaluates the held plans of its
// commit at once (HoldEvaluator::ReevaluateHoldsOf) instead of at the next
// --hold-check-interval. Resumes from the cursor persisted in the store
// (CursorStore, name kCursorName) and persists it after each event.
//  - A transient failure (UNAVAILABLE, ...: the repo-watcher or the
//    database) stops the stream without moving the cursor; it is reopened
//    with backoff (500 ms doubling to 30 s) and the event handled again.
//  - Any other failure is logged and the cursor moves past the event: the
//    periodic re-evaluation (HoldReleaser) still sees its result, since the
//    held plans read the commit's checks themselves (ListChecks).
// Pull-request events are passed over (the previews are another component's).
// Thread-safe; Stop() is idempotent.
class ReviewEventConsumer {
 public:
  static constexpr char kCursorName[] = "repo_watcher_review";
  static constexpr absl::Duration kHealthyStream = absl::Seconds(10);
  static constexpr absl::Duration kInitialBackoff = absl::Milliseconds(500);
  static constexpr absl::Duration kMaxBackoff = absl::Seconds(30);

  // `clock` (for the waits) must outlive the consumer; the system clock when null.
  ReviewEventConsumer(CheckSource* source, CursorStore* cursors, HoldEvaluator* holds,
                      const WaitableClock* clock = nullptr);
  void Start() { loop_.Start(); }
  // Cancels the open stream, then stops the loop.
  void Stop() { loop_.Stop(); }

 private:
  // OK when the cursor moved past `event`; the failure that stops the stream otherwise.
  absl::Status Consume(const v1::WatchReviewEventsResponse& event);

  CheckSource* source_;
  CursorStore* cursors_;
  HoldEvaluator* holds_;
  SystemClock system_clock_;
  const WaitableClock* clock_;
  CursorStreamLoop<ReviewEventStream, v1::WatchReviewEventsResponse> loop_;
};

}  // namespace ferry::planner
