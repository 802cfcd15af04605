#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "ferry/v1/repo_watcher.pb.h"

#include "services/planner/review_event_stream.h"

namespace ferry::planner {

// The repo-watcher's WatchReviewEvents. Thread-safe.
class ReviewEventSource {
 public:
  virtual ~ReviewEventSource() = default;
  // Events after `cursor` ("" = the oldest retained), then live.
  virtual std::unique_ptr<ReviewEventStream> WatchReviewEvents(const std::string& cursor) = 0;
};

}  // namespace ferry::planner
