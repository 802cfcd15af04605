#pragma once

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "services/planner/cursor_stream_loop.h"
#include "services/planner/planner_store.h"
#include "services/planner/repo_source.h"
#include "services/planner/revision_planner.h"

namespace ferry::planner {

// One job: consuming the repo-watcher's WatchRevisions stream on a
// background loop: resumes from the cursor persisted in the store, hands
// each revision to RevisionPlanner::HandleRevision and persists the cursor
// after it. A dropped stream is reconnected with backoff (500 ms doubling to
// 30 s; a stream that delivered a revision or stayed up over 10 s was
// healthy: the next attempt comes after 500 ms and the backoff starts over).
//
// Poison isolation: no revision can block the ones behind it.
//  - Each attempt is recorded in the store before the handler runs
//    (CursorStore::BeginAttempt), so an attempt that never ended (the planner
//    crashed, or was killed after hanging) is counted at the next start.
//  - A revision whose handling fails with an input error (IsInputError:
//    INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE, RESOURCE_EXHAUSTED,
//    NOT_FOUND, DATA_LOSS, UNIMPLEMENTED) is failed: an audit event
//    (RENDER_FAILED) names it and the reason, and the cursor moves past it.
//    (Input errors of one application are already failed plans of that
//    application: RevisionPlanner.)
//  - A transient failure (UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED,
//    CANCELLED: a peer or the database) does not count against the
//    revision: it is retried with backoff and the cursor does not move.
//  - Any other failure (INTERNAL, UNKNOWN, ..., a handler that threw) and
//    every unfinished attempt count. A revision with `quarantine_attempts`
//    counted attempts is quarantined: an audit event names it, the count and
//    the last error, and the cursor moves past it.
// Thread-safe; Stop() is idempotent.
class RevisionConsumer {
 public:
  static constexpr char kCursorName[] = "repo_watcher";
  // Counted attempts (crashes, kills, throws, non-transient failures) after
  // which a revision is quarantined (--revision-quarantine-attempts).
  static constexpr int kDefaultQuarantineAttempts = 2;
  // A stream that stayed open longer than this was healthy.
  static constexpr absl::Duration kHealthyStream = absl::Seconds(10);
  static constexpr absl::Duration kInitialBackoff = absl::Milliseconds(500);
  static constexpr absl::Duration kMaxBackoff = absl::Seconds(30);

  // `clock` (for the waits and the stream's age) must outlive the consumer;
  // the system clock when null.
  RevisionConsumer(RepoSource* repo, CursorStore* cursors, RevisionPlanner* planner,
                   const WaitableClock* clock = nullptr, int quarantine_attempts = kDefaultQuarantineAttempts);
  void Start() { loop_.Start(); }
  // Cancels the open stream, then stops the loop.
  void Stop() { loop_.Stop(); }

 private:
  // Handles one revision under the poison rules above: OK when the cursor
  // moved past it, the failure that stops the stream otherwise.
  absl::Status Consume(const v1::Revision& revision);
  // Moves the cursor past `revision` with the audit event of its failure.
  absl::Status Skip(const v1::Revision& revision, const std::string& kind, const std::string& message);

  RepoSource* repo_;
  CursorStore* cursors_;
  RevisionPlanner* planner_;
  SystemClock system_clock_;
  const WaitableClock* clock_;
  const int quarantine_attempts_;
  CursorStreamLoop<RevisionStream, v1::Revision> loop_;
};

}  // namespace ferry::planner
