#include "services/planner/preview/preview_consumer.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "common/concurrency/last_resort.h"
#include "common/logging/logger.h"
#include "services/planner/revision_planner.h"

namespace ferry::planner {
namespace {

concurrency::LoopOptions ConsumerOptions() {
  concurrency::LoopOptions options;
  options.backoff.initial = PreviewConsumer::kInitialBackoff;
  options.backoff.max = PreviewConsumer::kMaxBackoff;
  options.on_failure = [](const absl::Status&, absl::Duration) {};  // logged by ConsumeStream
  return options;
}

}  // namespace

PreviewConsumer::PreviewConsumer(ReviewEventSource* source, CursorStore* cursors, PullRequestPreviews* previews,
                                 const WaitableClock* clock)
    : source_(source),
      cursors_(cursors),
      previews_(previews),
      clock_(clock != nullptr ? clock : &system_clock_),
      loop_("preview-consumer", [this] { return ConsumeStream(); }, ConsumerOptions(), clock_) {}

void PreviewConsumer::Stop() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    if (active_) active_->Cancel();
  }
  loop_.Stop();
}

absl::StatusOr<absl::Duration> PreviewConsumer::ConsumeStream() {
  absl::StatusOr<std::string> cursor = cursors_->GetCursor(kCursorName);
  if (!cursor.ok()) {
    logging::Warn("cannot read the review-event cursor", {{"error", cursor.status().ToString()}});
    return cursor.status();
  }
  std::unique_ptr<ReviewEventStream> stream = source_->WatchReviewEvents(*cursor);
  {
    MutexLock lock(&mu_);
    if (stopping_) {
      stream->Cancel();
      return absl::InfiniteDuration();
    }
    active_ = stream.get();
  }
  v1::WatchReviewEventsResponse event;
  absl::Status failure;
  bool progressed = false;
  while (stream->Next(&event)) {
    bool threw = false;
    absl::Status handled = concurrency::RunGuarded(
        "previewing a pull request", [&] { return previews_->HandleEvent(event); }, &threw);
    if (!handled.ok() && !threw && IsInputError(handled)) {
      logging::Warn("review event cannot be previewed; moving past it",
                    {{"cursor", event.cursor()},
                     {"repository", event.pull_request().repository_id()},
                     {"number", event.pull_request().number()},
                     {"error", handled.ToString()}});
      handled = absl::OkStatus();
    }
    if (!handled.ok()) {
      logging::Warn("review event not handled; will retry", {{"cursor", event.cursor()}, {"error", handled.ToString()}});
      failure = handled;
      break;
    }
    absl::Status saved = cursors_->AdvanceCursor(kCursorName, event.cursor(), {});
    if (!saved.ok()) {
      logging::Warn("cannot persist the review-event cursor", {{"error", saved.ToString()}});
      failure = saved;
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
  if (progressed) return kInitialBackoff;
  if (!failure.ok()) return failure;
  logging::Info("review-event stream ended; reconnecting", {{"status", end.ToString()}});
  return absl::UnavailableError(absl::StrCat("review-event stream ended: ", end.ToString()));
}

}  // namespace ferry::planner
