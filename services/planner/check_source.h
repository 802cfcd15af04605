#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ferry/v1/repo_watcher.pb.h"

namespace ferry::planner {

// A live stream of review events (check results, pull requests). Next()
// blocks; Cancel() may be called from any thread to make a blocked Next()
// return false.
class ReviewEventStream {
 public:
  virtual ~ReviewEventStream() = default;
  // The next event; false when the stream ended (see Finish()).
  virtual bool Next(v1::WatchReviewEventsResponse* event) = 0;
  virtual void Cancel() = 0;
  // Why the stream ended: UNAVAILABLE and the like mean "reconnect".
  virtual absl::Status Finish() = 0;
};

// Where the planner learns CI check results of commits: the repo-watcher,
// which records them from ReportCheck and from the Git hosts' status and
// check-run webhooks. Thread-safe.
class CheckSource {
 public:
  virtual ~CheckSource() = default;

  // The latest result of every check reported for `sha` of `repository_id`
  // (one per name; the latest report wins). Empty when none was reported.
  // UNAVAILABLE when the repo-watcher cannot be reached.
  virtual absl::StatusOr<std::vector<v1::CommitCheck>> ListChecks(const std::string& repository_id,
                                                                   const std::string& sha) = 0;

  // Review events after `cursor` ("" = from the oldest retained), then live.
  virtual std::unique_ptr<ReviewEventStream> WatchReviewEvents(const std::string& cursor) = 0;
};

}  // namespace ferry::planner
