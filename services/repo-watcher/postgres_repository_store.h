#pragma once

#include <string>

#include "common/outbox/outbox_store.h"
#include "common/postgres/connection_pool.h"
#include "services/repo-watcher/repository_store.h"

namespace ferry::repo_watcher {

// RepositoryStore on the repo_watcher schema. Holds every SQL statement of
// the service. Thread-safe.
class PostgresRepositoryStore final : public RepositoryStore {
 public:
  // NOTIFY channel carrying the cursor of each committed revision.
  static constexpr const char* kRevisionChannel = "repo_watcher_revisions";

  PostgresRepositoryStore(postgres::ConnectionPool* pool, outbox::OutboxStore* outbox);

  absl::StatusOr<v1::Repository> Create(const v1::Repository& repo, const v1::Event& audit) override;
  absl::StatusOr<v1::Repository> Get(const std::string& id) override;
  absl::StatusOr<std::vector<v1::Repository>> List(const std::string& after_id, int limit) override;
  absl::StatusOr<std::vector<std::string>> ListIds(const std::string& after_id, int limit) override;
  absl::StatusOr<v1::Repository> Update(const v1::Repository& repo, const v1::Repository& expected,
                                        const v1::Event& audit) override;
  absl::Status Delete(const std::string& id, const v1::Event& audit) override;
  absl::StatusOr<v1::RepositoryStatus> GetStatus(const std::string& id) override;
  absl::Status RecordCheck(const CheckRecord& record, const std::optional<v1::Event>& audit) override;
  absl::Status RecordChecks(const std::vector<CheckRecord>& records) override;
  // One statement (one round trip, one snapshot), outside a transaction.
  absl::StatusOr<PollState> ReadForPoll(const std::string& id) override;
  absl::StatusOr<std::map<std::string, PollState>> ReadForPollMany(const std::vector<std::string>& ids) override;
  absl::StatusOr<v1::Revision> RecordRevision(const v1::Revision& revision, const std::string& expected_tip,
                                              const v1::Event& audit) override;
  absl::Status DropRefState(const std::string& repository_id, const std::string& ref) override;
  absl::StatusOr<std::vector<v1::Revision>> RevisionsAfter(int64_t after, const std::vector<std::string>& repository_ids,
                                                           bool include_rejected, int limit) override;
  absl::StatusOr<std::vector<v1::Revision>> ListRevisions(const RevisionQuery& query) override;
  absl::Status RecordEvent(const v1::Event& audit) override;
  absl::StatusOr<bool> WithRepositoryLock(const std::string& id, const std::function<void()>& fn) override;

 private:
  postgres::ConnectionPool* pool_;
  outbox::OutboxStore* outbox_;
};

}  // namespace ferry::repo_watcher
