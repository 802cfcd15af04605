#pragma once

#include "absl/status/status.h"
#include "ferry/v1/repo_watcher.pb.h"

namespace ferry::planner {

// A live stream of the repo-watcher's review events (check results; pull
// requests opened, moved, closed). Next() blocks; Cancel() may be called
// from any thread to make a blocked Next() return false. Both the required
// checks (CheckSource) and the previews (ReviewEventSource) follow one.
class ReviewEventStream {
 public:
  virtual ~ReviewEventStream() = default;
  // The next event; false when the stream ended (see Finish()).
  virtual bool Next(v1::WatchReviewEventsResponse* event) = 0;
  virtual void Cancel() = 0;
  // Why the stream ended: UNAVAILABLE and the like mean "reconnect".
  virtual absl::Status Finish() = 0;
};

}  // namespace ferry::planner
