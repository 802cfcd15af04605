#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "common/concurrency/background_loop.h"
#include "common/concurrency/mutex.h"
#include "common/logging/logger.h"
#include "services/planner/planner_store.h"

namespace ferry::planner {

// One job: the loop the planner's stream consumers share (revisions, review
// events for held plans, review events for previews). On a background loop
// it reads the consumer's cursor (CursorStore), opens the stream there and
// hands each message to the consumer, which moves the cursor past it (OK)
// or says why not (the stream is closed and reopened at the cursor, so the
// message comes again).
//  - A stream that moved the cursor, or stayed up longer than
//    `healthy_stream`, was healthy: it is reopened after `initial_backoff`
//    and the backoff starts over; otherwise the wait doubles up to
//    `max_backoff`.
//  - Stop() cancels the open stream, then stops the loop; idempotent.
// `Stream` has bool Next(Message*), void Cancel() (thread-safe) and
// absl::Status Finish().
template <typename Stream, typename Message>
class CursorStreamLoop {
 public:
  struct Options {
    std::string name;         // The loop's name, e.g. "revision-consumer".
    std::string stream;       // In log lines and errors, e.g. "revision stream".
    std::string cursor_name;  // The CursorStore cursor.
    absl::Duration initial_backoff = absl::Milliseconds(500);
    absl::Duration max_backoff = absl::Seconds(30);
    absl::Duration healthy_stream = absl::Seconds(10);
  };
  using Open = std::function<std::unique_ptr<Stream>(const std::string& cursor)>;
  using Handle = std::function<absl::Status(const Message&)>;

  // `cursors` and `clock` must outlive the loop.
  CursorStreamLoop(Options options, CursorStore* cursors, Open open, Handle handle, const WaitableClock* clock)
      : options_(std::move(options)),
        cursors_(cursors),
        open_(std::move(open)),
        handle_(std::move(handle)),
        clock_(clock),
        loop_(options_.name, [this] { return ConsumeStream(); }, LoopOptionsOf(options_), clock_) {}

  void Start() { loop_.Start(); }
  void Stop() {
    {
      MutexLock lock(&mu_);
      stopping_ = true;
      if (active_) active_->Cancel();
    }
    loop_.Stop();
  }

 private:
  static concurrency::LoopOptions LoopOptionsOf(const Options& o) {
    concurrency::LoopOptions options;
    options.backoff.initial = o.initial_backoff;
    options.backoff.max = o.max_backoff;
    options.on_failure = [](const absl::Status&, absl::Duration) {};  // logged where it happens
    return options;
  }

  absl::StatusOr<absl::Duration> ConsumeStream() {
    absl::StatusOr<std::string> cursor = cursors_->GetCursor(options_.cursor_name);
    if (!cursor.ok()) {
      logging::Warn("cannot read a stream's cursor",
                    {{"stream", options_.stream}, {"error", cursor.status().ToString()}});
      return cursor.status();
    }
    std::unique_ptr<Stream> stream = open_(*cursor);
    {
      MutexLock lock(&mu_);
      if (stopping_) {
        stream->Cancel();
        return absl::InfiniteDuration();
      }
      active_ = stream.get();
    }
    Message message;
    absl::Status failure;
    bool progressed = false;
    const absl::Time opened = clock_->Now();
    while (stream->Next(&message)) {
      failure = handle_(message);
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
    if (failure.ok()) logging::Info("stream ended; reconnecting", {{"stream", options_.stream}, {"status", end.ToString()}});
    if (progressed || (failure.ok() && clock_->Now() - opened > options_.healthy_stream)) {
      return options_.initial_backoff;
    }
    if (!failure.ok()) return failure;
    return absl::UnavailableError(absl::StrCat(options_.stream, " ended after a short while: ", end.ToString()));
  }

  const Options options_;
  CursorStore* const cursors_;
  const Open open_;
  const Handle handle_;
  const WaitableClock* const clock_;
  Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  Stream* active_ ABSL_GUARDED_BY(mu_) = nullptr;
  concurrency::BackgroundLoop loop_;
};

}  // namespace ferry::planner
