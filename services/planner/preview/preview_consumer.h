#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "services/planner/cursor_stream_loop.h"
#include "services/planner/planner_store.h"
#include "services/planner/preview/pull_request_previews.h"
#include "services/planner/preview/review_event_source.h"

namespace ferry::planner {

// One job: consuming the repo-watcher's WatchReviewEvents stream on a
// background loop: resumes from the cursor persisted in the store (cursor
// "review_events"), hands each event to PullRequestPreviews::HandleEvent
// and persists the cursor after it. A dropped stream is reconnected with
// backoff (500 ms doubling to 30 s). An event that fails with an input
// error (IsInputError: a pull request naming a commit the mirror lacks, a
// malformed event) is logged and passed; a transient failure (the
// repo-watcher, the database) is retried and the cursor does not move.
// Thread-safe; Stop() is idempotent.
class PreviewConsumer {
 public:
  static constexpr char kCursorName[] = "review_events";
  static constexpr absl::Duration kInitialBackoff = absl::Milliseconds(500);
  static constexpr absl::Duration kMaxBackoff = absl::Seconds(30);

  PreviewConsumer(ReviewEventSource* source, CursorStore* cursors, PullRequestPreviews* previews,
                  const WaitableClock* clock = nullptr);
  void Start() { loop_.Start(); }
  void Stop() { loop_.Stop(); }

 private:
  // OK when the cursor moved past `event`; the failure that stops the stream otherwise.
  absl::Status Consume(const v1::WatchReviewEventsResponse& event);

  ReviewEventSource* source_;
  CursorStore* cursors_;
  PullRequestPreviews* previews_;
  SystemClock system_clock_;
  const WaitableClock* clock_;
  CursorStreamLoop<ReviewEventStream, v1::WatchReviewEventsResponse> loop_;
};

}  // namespace ferry::planner
