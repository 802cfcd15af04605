#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "ferry/v1/repo_watcher.pb.h"

namespace ferry::planner {

// A live stream of review events (pull requests opened, moved, closed;
// check results). Next() blocks; Cancel() may be called from any thread to
// make a blocked Next() return false.
class ReviewEventStream {
 public:
  virtual ~ReviewEventStream() = default;
  virtual bool Next(v1::WatchReviewEventsResponse* event) = 0;
  virtual void Cancel() = 0;
  // Why the stream ended: UNAVAILABLE and the like mean "reconnect".
  virtual absl::Status Finish() = 0;
};

// The repo-watcher's WatchReviewEvents. Thread-safe.
class ReviewEventSource {
 public:
  virtual ~ReviewEventSource() = default;
  // Events after `cursor` ("" = the oldest retained), then live.
  virtual std::unique_ptr<ReviewEventStream> WatchReviewEvents(const std::string& cursor) = 0;
};

}  // namespace ferry::planner
