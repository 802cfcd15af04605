#include "services/planner/revision_consumer.h"

#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/logging/logger.h"

namespace ferry::planner {

namespace {

concurrency::LoopOptions ConsumerOptions() {
  concurrency::LoopOptions options;
  options.backoff.initial = RevisionConsumer::kInitialBackoff;
  options.backoff.max = RevisionConsumer::kMaxBackoff;
  // ConsumeStream logs each failure itself.
  options.on_failure = [](const absl::Status&, absl::Duration) {};
  return options;
}

}  // namespace

RevisionConsumer::RevisionConsumer(RepoSource* repo, CursorStore* cursors, RevisionPlanner* planner,
                                   const WaitableClock* clock)
    : repo_(repo),
      cursors_(cursors),
      planner_(planner),
      clock_(clock != nullptr ? clock : &system_clock_),
      loop_("revision-consumer", [this] { return ConsumeStream(); }, ConsumerOptions(), clock_) {}

void RevisionConsumer::Stop() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    if (active_) active_->Cancel();
  }
  loop_.Stop();
}

absl::StatusOr<absl::Duration> RevisionConsumer::ConsumeStream() {
  absl::StatusOr<std::string> cursor = cursors_->GetCursor(kCursorName);
  if (!cursor.ok()) {
    logging::Warn("cannot read the revision cursor", {{"error", cursor.status().ToString()}});
    return cursor.status();
  }
  std::unique_ptr<RevisionStream> stream = repo_->WatchRevisions(*cursor);
  {
    MutexLock lock(&mu_);
    if (stopping_) {
      stream->Cancel();
      return absl::InfiniteDuration();
    }
    active_ = stream.get();
  }
  v1::Revision revision;
  absl::Status failure;
  bool progressed = false;
  const absl::Time opened = clock_->Now();
  while (stream->Next(&revision)) {
    absl::StatusOr<int> planned = planner_->HandleRevision(revision);
    if (!planned.ok()) {
      logging::Warn("revision not planned; will retry",
                    {{"revision", revision.id()}, {"sha", revision.sha()}, {"error", planned.status().ToString()}});
      failure = planned.status();
      break;
    }
    if (*planned > 0)
      logging::Info("revision planned", {{"sha", revision.sha()}, {"ref", revision.ref()}, {"plans", *planned}});
    absl::Status s = cursors_->SetCursor(kCursorName, revision.cursor());
    if (!s.ok()) {
      logging::Warn("cannot persist the revision cursor", {{"error", s.ToString()}});
      failure = s;
      break;
    }
    progressed = true;
  }
  {
    MutexLock lock(&mu_);
    active_ = nullptr;
    if (stopping_) {
      stream->Cancel();
      return absl::InfiniteDuration();
    }
  }
  stream->Cancel();
  absl::Status end = stream->Finish();
  if (failure.ok()) logging::Info("revision stream ended; reconnecting", {{"status", end.ToString()}});
  // A stream that moved the cursor or stayed up a while was healthy: retry
  // or reconnect after the initial wait, starting the backoff over.
  if (progressed || (failure.ok() && clock_->Now() - opened > kHealthyStream)) return kInitialBackoff;
  if (!failure.ok()) return failure;
  return absl::UnavailableError(absl::StrCat("revision stream ended after a short while: ", end.ToString()));
}

}  // namespace ferry::planner
