#pragma once

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "common/concurrency/background_loop.h"
#include "common/concurrency/mutex.h"
#include "services/planner/planner_store.h"
#include "services/planner/repo_source.h"
#include "services/planner/revision_planner.h"

namespace ferry::planner {

// One job: consuming the repo-watcher's WatchRevisions stream on a
// background loop: resumes from the cursor persisted in the store, hands
// each revision to RevisionPlanner::HandleRevision and persists the cursor
// after it. A failed revision is retried (the cursor does not move); a
// dropped stream is reconnected with backoff (500 ms doubling to 30 s; a
// stream that delivered a revision or stayed up over 10 s was healthy: the
// next attempt comes after 500 ms and the backoff starts over).
// Thread-safe; Stop() is idempotent.
class RevisionConsumer {
 public:
  static constexpr char kCursorName[] = "repo_watcher";
  // A stream that stayed open longer than this was healthy.
  static constexpr absl::Duration kHealthyStream = absl::Seconds(10);
  static constexpr absl::Duration kInitialBackoff = absl::Milliseconds(500);
  static constexpr absl::Duration kMaxBackoff = absl::Seconds(30);

  // `clock` (for the waits and the stream's age) must outlive the consumer;
  // the system clock when null.
  RevisionConsumer(RepoSource* repo, CursorStore* cursors, RevisionPlanner* planner,
                   const WaitableClock* clock = nullptr);
  void Start() { loop_.Start(); }
  // Cancels the open stream, then stops the loop.
  void Stop();

 private:
  // Opens the stream and consumes it until it ends or a revision fails.
  absl::StatusOr<absl::Duration> ConsumeStream();

  RepoSource* repo_;
  CursorStore* cursors_;
  RevisionPlanner* planner_;
  SystemClock system_clock_;
  const WaitableClock* clock_;
  Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  RevisionStream* active_ ABSL_GUARDED_BY(mu_) = nullptr;
  concurrency::BackgroundLoop loop_;
};

}  // namespace ferry::planner
