#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ferry/v1/repo_watcher.pb.h"

#include "services/planner/review_event_stream.h"

namespace ferry::planner {

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
