#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ferry/v1/audit.pb.h"
#include "ferry/v1/repo_watcher.pb.h"

namespace ferry::repo_watcher {

// Persistent review state of the repo-watcher (#20): the latest CI check
// result per (repository, sha, name), pull requests, and the event log
// behind WatchReviewEvents. Every change appends one event to the log and
// enqueues its audit event in the same transaction, then wakes review
// watchers (NOTIFY). Thread-safe. Errors: NOT_FOUND (unknown repository),
// ABORTED (a concurrent change won; retry), UNAVAILABLE, INTERNAL.
class ReviewStore {
 public:
  virtual ~ReviewStore() = default;

  // Replaces the result of (repository_id, sha, name) with `check`
  // (report_time set to now) and logs it. Returns the stored check.
  virtual absl::StatusOr<v1::CommitCheck> RecordCheck(const v1::CommitCheck& check, const v1::Event& audit) = 0;
  // The latest result of every check of a commit, ordered by name.
  virtual absl::StatusOr<std::vector<v1::CommitCheck>> ListChecks(const std::string& repository_id,
                                                                  const std::string& sha) = 0;

  // The stored pull request, or nullopt.
  virtual absl::StatusOr<std::optional<v1::PullRequest>> GetPullRequest(const std::string& repository_id,
                                                                        int64_t number) = 0;
  // Writes `pr` (update_time set to now) if the stored row is still
  // `expected` (nullopt: no row yet), ABORTED otherwise, and logs it.
  virtual absl::StatusOr<v1::PullRequest> RecordPullRequest(const v1::PullRequest& pr,
                                                            const std::optional<v1::PullRequest>& expected,
                                                            const v1::Event& audit) = 0;
  // Pull requests of one repository (empty: all), open ones only unless
  // `include_closed`, ordered by repository and number.
  virtual absl::StatusOr<std::vector<v1::PullRequest>> ListPullRequests(const std::string& repository_id,
                                                                        bool include_closed) = 0;

  // Logged events with cursor > `after`, ascending, of `repository_ids`
  // (empty: all), at most `limit`; each with its cursor set.
  virtual absl::StatusOr<std::vector<v1::WatchReviewEventsResponse>> ReviewEventsAfter(
      int64_t after, const std::vector<std::string>& repository_ids, int limit) = 0;

  // Enqueues an audit event on its own (no state change: refused reports).
  virtual absl::Status RecordEvent(const v1::Event& audit) = 0;
};

}  // namespace ferry::repo_watcher
