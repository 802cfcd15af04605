#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "ferry/v1/audit.pb.h"
#include "ferry/v1/repo_watcher.pb.h"
#include "services/repo-watcher/review_store.h"
#include "services/repo-watcher/revision_notifier.h"

namespace ferry::repo_watcher {

// Bounds of a check report (ReportCheck and webhooks alike).
inline constexpr size_t kMaxCheckNameBytes = 255;
inline constexpr size_t kMaxCheckUrlBytes = 2048;
inline constexpr size_t kMaxCheckDescriptionBytes = 1024;

// Whether `sha` is a full commit id: 40 lowercase hex characters.
bool IsFullSha(const std::string& sha);

// Checks a check report field by field; INVALID_ARGUMENT naming the first
// bad field: repository_id (not an id), sha (not 40 lowercase hex), name
// (empty, over 255 bytes, not UTF-8 or with control characters), state
// (unset or unknown), url (not http(s)://, over 2048 bytes, whitespace or
// control characters), description (over 1024 bytes, not UTF-8).
absl::Status ValidateCheckReport(const v1::ReportCheckRequest& report);

// The review side of the repo-watcher (#20): records CI check results
// (ReportCheck and status webhooks) and pull-request changes (webhooks),
// lists them, and streams them to WatchReviewEvents from a cursor, then
// live as the notifier announces new events (this replica's through
// Notify, other replicas' through LISTEN on
// PostgresReviewStore::kReviewChannel). Every change is audited. Thread-safe.
class ReviewLog {
 public:
  using Sink = std::function<bool(const v1::WatchReviewEventsResponse&)>;  // false: client gone
  using Cancelled = std::function<bool()>;

  ReviewLog(ReviewStore* store, RevisionNotifier* notifier) : store_(store), notifier_(notifier) {}

  // Validates and records one check result by `actor` from `source` ("api",
  // "github", "gitlab", "gitea"). INVALID_ARGUMENT (audited) naming the
  // field; NOT_FOUND for an unknown repository (audited).
  absl::StatusOr<v1::CommitCheck> ReportCheck(const v1::ReportCheckRequest& report, const v1::Actor& actor,
                                              const std::string& source);
  absl::StatusOr<v1::ListChecksResponse> ListChecks(const v1::ListChecksRequest& request);
  absl::StatusOr<v1::ListPullRequestsResponse> ListPullRequests(const v1::ListPullRequestsRequest& request);

  // Writes a pull request if the stored one is still `expected` (see
  // ReviewStore::RecordPullRequest), audits it with `action`, wakes watchers.
  absl::StatusOr<v1::PullRequest> RecordPullRequest(const v1::PullRequest& pr,
                                                    const std::optional<v1::PullRequest>& expected,
                                                    v1::AuditAction action, const v1::Actor& actor,
                                                    const std::string& message);
  absl::StatusOr<std::optional<v1::PullRequest>> GetPullRequest(const std::string& repository_id, int64_t number) {
    return store_->GetPullRequest(repository_id, number);
  }

  // Streams until the client leaves (OK) or the server shuts down
  // (UNAVAILABLE: resume with the last cursor). INVALID_ARGUMENT for a bad
  // cursor or repository id.
  absl::Status Watch(const v1::WatchReviewEventsRequest& request, const Sink& sink, const Cancelled& cancelled);

 private:
  ReviewStore* store_;
  RevisionNotifier* notifier_;
};

}  // namespace ferry::repo_watcher
