#include "services/planner/preview/preview_consumer.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "common/concurrency/last_resort.h"
#include "common/logging/logger.h"
#include "services/planner/revision_planner.h"

namespace ferry::planner {

PreviewConsumer::PreviewConsumer(ReviewEventSource* source, CursorStore* cursors, PullRequestPreviews* previews,
                                 const WaitableClock* clock)
    : source_(source),
      cursors_(cursors),
      previews_(previews),
      clock_(clock != nullptr ? clock : &system_clock_),
      loop_({.name = "preview-consumer",
             .stream = "review-event stream (previews)",
             .cursor_name = kCursorName,
             .initial_backoff = kInitialBackoff,
             .max_backoff = kMaxBackoff},
            cursors_, [this](const std::string& cursor) { return source_->WatchReviewEvents(cursor); },
            [this](const v1::WatchReviewEventsResponse& event) { return Consume(event); }, clock_) {}

absl::Status PreviewConsumer::Consume(const v1::WatchReviewEventsResponse& event) {
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
    return handled;
  }
  absl::Status saved = cursors_->AdvanceCursor(kCursorName, event.cursor(), {});
  if (!saved.ok()) logging::Warn("cannot persist the review-event cursor", {{"error", saved.ToString()}});
  return saved;
}

}  // namespace ferry::planner
