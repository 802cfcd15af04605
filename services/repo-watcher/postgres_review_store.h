#pragma once

#include "common/outbox/outbox_store.h"
#include "common/postgres/connection_pool.h"
#include "services/repo-watcher/review_store.h"

namespace ferry::repo_watcher {

// ReviewStore on the repo_watcher schema (tables commit_checks,
// pull_requests, review_events of schema/003_review.sql). Thread-safe.
class PostgresReviewStore final : public ReviewStore {
 public:
  // NOTIFY channel carrying the cursor of each committed review event.
  static constexpr const char* kReviewChannel = "repo_watcher_review_events";

  PostgresReviewStore(postgres::ConnectionPool* pool, outbox::OutboxStore* outbox);

  absl::StatusOr<v1::CommitCheck> RecordCheck(const v1::CommitCheck& check, const v1::Event& audit) override;
  absl::StatusOr<std::vector<v1::CommitCheck>> ListChecks(const std::string& repository_id,
                                                          const std::string& sha) override;
  absl::StatusOr<std::optional<v1::PullRequest>> GetPullRequest(const std::string& repository_id,
                                                                int64_t number) override;
  absl::StatusOr<v1::PullRequest> RecordPullRequest(const v1::PullRequest& pr,
                                                    const std::optional<v1::PullRequest>& expected,
                                                    const v1::Event& audit) override;
  absl::StatusOr<std::vector<v1::PullRequest>> ListPullRequests(const std::string& repository_id,
                                                                bool include_closed) override;
  absl::StatusOr<std::vector<v1::WatchReviewEventsResponse>> ReviewEventsAfter(
      int64_t after, const std::vector<std::string>& repository_ids, int limit) override;
  absl::Status RecordEvent(const v1::Event& audit) override;

 private:
  postgres::ConnectionPool* pool_;
  outbox::OutboxStore* outbox_;
};

}  // namespace ferry::repo_watcher
