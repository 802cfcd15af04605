#include "services/planner/review_event_consumer.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/concurrency/last_resort.h"
#include "common/logging/logger.h"
#include "common/status/transient.h"

namespace ferry::planner {
namespace {

concurrency::LoopOptions ConsumerOptions() {
  concurrency::LoopOptions options;
  options.backoff.initial = ReviewEventConsumer::kInitialBackoff;
  options.backoff.max = ReviewEventConsumer::kMaxBackoff;
  options.on_failure = [](const absl::Status&, absl::Duration) {};  // logged where it happens
  return options;
}

}  // namespace

ReviewEventConsumer::ReviewEventConsumer(CheckSource* source, CursorStore* cursors, HoldEvaluator* holds,
                                         const WaitableClock* clock)
    : source_(source),
      cursors_(cursors),
      holds_(holds),
      clock_(clock != nullptr ? clock : &system_clock_),
      loop_("review-event-consumer", [this] { return ConsumeStream(); }, ConsumerOptions(), clock_) {}

void ReviewEventConsumer::Stop() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    if (active_) active_->Cancel();
  }
  loop_.Stop();
}

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

absl::StatusOr<absl::Duration> ReviewEventConsumer::ConsumeStream() {
  absl::StatusOr<std::string> cursor = cursors_->GetCursor(kCursorName);
  if (!cursor.ok()) {
    logging::Warn("cannot read the review event cursor", {{"error", cursor.status().ToString()}});
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
  const absl::Time opened = clock_->Now();
  while (stream->Next(&event)) {
    failure = Consume(event);
    if (!failure.ok()) break;
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
  if (failure.ok()) logging::Info("review event stream ended; reconnecting", {{"status", end.ToString()}});
  if (progressed || (failure.ok() && clock_->Now() - opened > kHealthyStream)) return kInitialBackoff;
  if (!failure.ok()) return failure;
  return absl::UnavailableError(absl::StrCat("review event stream ended after a short while: ", end.ToString()));
}

}  // namespace ferry::planner
