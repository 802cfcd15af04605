#pragma once

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "common/concurrency/background_loop.h"
#include "common/concurrency/mutex.h"
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
  void Stop();

 private:
  absl::StatusOr<absl::Duration> ConsumeStream();

  ReviewEventSource* source_;
  CursorStore* cursors_;
  PullRequestPreviews* previews_;
  SystemClock system_clock_;
  const WaitableClock* clock_;
  Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  ReviewEventStream* active_ ABSL_GUARDED_BY(mu_) = nullptr;
  concurrency::BackgroundLoop loop_;
};

}  // namespace ferry::planner
