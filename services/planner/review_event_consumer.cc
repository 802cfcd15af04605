#include "services/planner/review_event_consumer.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/concurrency/last_resort.h"
#include "common/logging/logger.h"
#include "common/status/transient.h"

namespace ferry::planner {

ReviewEventConsumer::ReviewEventConsumer(CheckSource* source, CursorStore* cursors, HoldEvaluator* holds,
                                         const WaitableClock* clock)
    : source_(source),
      cursors_(cursors),
      holds_(holds),
      clock_(clock != nullptr ? clock : &system_clock_),
      loop_({.name = "review-event-consumer",
             .stream = "review event stream",
             .cursor_name = kCursorName,
             .initial_backoff = kInitialBackoff,
             .max_backoff = kMaxBackoff,
             .healthy_stream = kHealthyStream},
            cursors_, [this](const std::string& cursor) { return source_->WatchReviewEvents(cursor); },
            [this](const v1::WatchReviewEventsResponse& event) { return Consume(event); }, clock_) {}

absl::Status ReviewEventConsumer::Consume(const v1::WatchReviewEventsResponse& event) {
  if (event.has_check()) {
    const v1::CommitCheck& check = event.check();
    bool threw = false;
    absl::StatusOr<int> released = concurrency::RunGuarded(
        absl::StrCat("re-evaluating plans of ", check.sha()),
        [&] { return holds_->ReevaluateHoldsOf(check.repository_id(), check.sha()); }, &threw);
    if (!released.ok()) {
      if (!threw && status::IsTransient(released.status())) {
        logging::Warn("check result not evaluated yet; will retry",
                      {{"sha", check.sha()}, {"check", check.name()}, {"error", released.status().ToString()}});
        return released.status();
      }
      logging::Warn("check result could not be evaluated; the periodic re-evaluation will",
                    {{"sha", check.sha()}, {"check", check.name()}, {"error", released.status().ToString()}});
    } else if (*released > 0) {
      logging::Info("plans released by a check result",
                    {{"sha", check.sha()}, {"check", check.name()}, {"released", *released}});
    }
  }
  absl::Status s = cursors_->SetCursor(kCursorName, event.cursor());
  if (!s.ok()) logging::Warn("cannot persist the review event cursor", {{"error", s.ToString()}});
  return s;
}

}  // namespace ferry::planner
