#include "services/repo-watcher/postgres_review_store.h"

#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/time_util.h"

namespace ferry::repo_watcher {
namespace {

using google::protobuf::util::TimeUtil;

// Serialises review-event inserts so cursors commit in increasing order.
constexpr int64_t kReviewOrderLock = 0x66657272795f7265;  // "ferry_re"

void Prepare(postgres::ConnectionPool* pool) {
  pool->Prepare("rv_order_lock", "SELECT pg_advisory_xact_lock($1)");
  // FOR SHARE: a repository deleted meanwhile waits for us or we for it.
  pool->Prepare("rv_repo_exists", "SELECT 1 FROM repo_watcher.repositories WHERE id = $1 FOR SHARE");
  pool->Prepare("rv_check_upsert",
                "INSERT INTO repo_watcher.commit_checks (repository_id, sha, name, state, check_result) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (repository_id, sha, name) DO UPDATE SET "
                "state = EXCLUDED.state, check_result = EXCLUDED.check_result, report_time = now() "
                "RETURNING extract(epoch from report_time)::float8");
  pool->Prepare("rv_checks_list",
                "SELECT check_result, extract(epoch from report_time)::float8 FROM repo_watcher.commit_checks "
                "WHERE repository_id = $1 AND sha = $2 ORDER BY name");
  pool->Prepare("rv_pr_get",
                "SELECT pull_request, extract(epoch from update_time)::float8 FROM repo_watcher.pull_requests "
                "WHERE repository_id = $1 AND number = $2");
  pool->Prepare("rv_pr_get_for_update",
                "SELECT pull_request FROM repo_watcher.pull_requests WHERE repository_id = $1 AND number = $2 "
                "FOR UPDATE");
  pool->Prepare("rv_pr_upsert",
                "INSERT INTO repo_watcher.pull_requests (repository_id, number, state, pull_request) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT (repository_id, number) DO UPDATE SET "
                "state = EXCLUDED.state, pull_request = EXCLUDED.pull_request, update_time = now() "
                "RETURNING extract(epoch from update_time)::float8");
  pool->Prepare("rv_pr_list",
                "SELECT pull_request, extract(epoch from update_time)::float8 FROM repo_watcher.pull_requests "
                "WHERE ($1 = '' OR repository_id = $1) AND ($2 OR state = $3) ORDER BY repository_id, number");
  pool->Prepare("rv_event_insert",
                "INSERT INTO repo_watcher.review_events (repository_id, event) VALUES ($1, $2) RETURNING cursor");
  pool->Prepare("rv_notify", absl::StrCat("SELECT pg_notify('", PostgresReviewStore::kReviewChannel, "', $1)"));
  pool->Prepare("rv_events_after",
                "SELECT cursor, event FROM repo_watcher.review_events WHERE cursor > $1 AND "
                "($2::text = '{}' OR repository_id = ANY($2::text::text[])) ORDER BY cursor LIMIT $3");
}

google::protobuf::Timestamp FromEpoch(double seconds) {
  return TimeUtil::NanosecondsToTimestamp(static_cast<int64_t>(seconds * 1e9));
}

absl::Status RepositoryExists(pqxx::work& txn, const std::string& id) {
  if (txn.exec_prepared("rv_repo_exists", id).empty()) {
    return absl::NotFoundError(absl::StrCat("repository \"", id, "\" not found"));
  }
  return absl::OkStatus();
}

// Appends `event` to the log (under the order lock) and announces it.
std::string AppendEvent(pqxx::work& txn, const std::string& repository_id, const v1::WatchReviewEventsResponse& event) {
  txn.exec_prepared("rv_order_lock", kReviewOrderLock);
  std::string cursor = txn.exec_prepared1("rv_event_insert", repository_id,
                                          pqxx::binarystring(event.SerializeAsString()))[0]
                           .as<std::string>();
  txn.exec_prepared("rv_notify", cursor);
  return cursor;
}

absl::StatusOr<v1::PullRequest> PullRequestFromBytes(const pqxx::field& bytes) {
  v1::PullRequest pr;
  if (!pr.ParseFromString(pqxx::binarystring(bytes).str())) return absl::InternalError("stored pull request is corrupt");
  return pr;
}

}  // namespace

PostgresReviewStore::PostgresReviewStore(postgres::ConnectionPool* pool, outbox::OutboxStore* outbox)
    : pool_(pool), outbox_(outbox) {
  Prepare(pool_);
}

absl::StatusOr<v1::CommitCheck> PostgresReviewStore::RecordCheck(const v1::CommitCheck& check,
                                                                 const v1::Event& audit) {
  return pool_->RunInTransactionWithResult<v1::CommitCheck>([&](pqxx::work& txn) -> absl::StatusOr<v1::CommitCheck> {
    if (absl::Status s = RepositoryExists(txn, check.repository_id()); !s.ok()) return s;
    v1::CommitCheck stored = check;
    stored.clear_report_time();
    pqxx::row row = txn.exec_prepared1("rv_check_upsert", check.repository_id(), check.sha(), check.name(),
                                       static_cast<int>(check.state()),
                                       pqxx::binarystring(stored.SerializeAsString()));
    *stored.mutable_report_time() = FromEpoch(row[0].as<double>());
    v1::WatchReviewEventsResponse event;
    *event.mutable_check() = stored;
    std::string cursor = AppendEvent(txn, check.repository_id(), event);
    v1::Event e = audit;
    (*e.mutable_details()->mutable_fields())["cursor"].set_string_value(cursor);
    if (absl::Status s = outbox_->Enqueue(txn, e); !s.ok()) return s;
    return stored;
  });
}

absl::StatusOr<std::vector<v1::CommitCheck>> PostgresReviewStore::ListChecks(const std::string& repository_id,
                                                                             const std::string& sha) {
  return pool_->RunStatementWithResult<std::vector<v1::CommitCheck>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::vector<v1::CommitCheck>> {
        std::vector<v1::CommitCheck> out;
        for (const auto& row : txn.exec_prepared("rv_checks_list", repository_id, sha)) {
          v1::CommitCheck c;
          if (!c.ParseFromString(pqxx::binarystring(row[0]).str())) {
            return absl::InternalError("stored check result is corrupt");
          }
          *c.mutable_report_time() = FromEpoch(row[1].as<double>());
          out.push_back(std::move(c));
        }
        return out;
      });
}

absl::StatusOr<std::optional<v1::PullRequest>> PostgresReviewStore::GetPullRequest(const std::string& repository_id,
                                                                                   int64_t number) {
  return pool_->RunStatementWithResult<std::optional<v1::PullRequest>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::optional<v1::PullRequest>> {
        pqxx::result r = txn.exec_prepared("rv_pr_get", repository_id, number);
        if (r.empty()) return std::optional<v1::PullRequest>();
        absl::StatusOr<v1::PullRequest> pr = PullRequestFromBytes(r[0][0]);
        if (!pr.ok()) return pr.status();
        *pr->mutable_update_time() = FromEpoch(r[0][1].as<double>());
        return std::optional<v1::PullRequest>(std::move(*pr));
      });
}

absl::StatusOr<v1::PullRequest> PostgresReviewStore::RecordPullRequest(const v1::PullRequest& pr,
                                                                       const std::optional<v1::PullRequest>& expected,
                                                                       const v1::Event& audit) {
  return pool_->RunInTransactionWithResult<v1::PullRequest>([&](pqxx::work& txn) -> absl::StatusOr<v1::PullRequest> {
    if (absl::Status s = RepositoryExists(txn, pr.repository_id()); !s.ok()) return s;
    pqxx::result current = txn.exec_prepared("rv_pr_get_for_update", pr.repository_id(), pr.number());
    bool unchanged = false;
    if (current.empty()) {
      unchanged = !expected.has_value();
    } else if (expected.has_value()) {
      absl::StatusOr<v1::PullRequest> now = PullRequestFromBytes(current[0][0]);
      if (!now.ok()) return now.status();
      v1::PullRequest want = *expected;
      want.clear_update_time();
      unchanged = now->SerializeAsString() == want.SerializeAsString();
    }
    if (!unchanged) {
      return absl::AbortedError(
          absl::StrCat("pull request ", pr.number(), " of ", pr.repository_id(), " changed concurrently"));
    }
    v1::PullRequest stored = pr;
    stored.clear_update_time();
    pqxx::row row = txn.exec_prepared1("rv_pr_upsert", pr.repository_id(), pr.number(), static_cast<int>(pr.state()),
                                       pqxx::binarystring(stored.SerializeAsString()));
    *stored.mutable_update_time() = FromEpoch(row[0].as<double>());
    v1::WatchReviewEventsResponse event;
    *event.mutable_pull_request() = stored;
    std::string cursor = AppendEvent(txn, pr.repository_id(), event);
    v1::Event e = audit;
    (*e.mutable_details()->mutable_fields())["cursor"].set_string_value(cursor);
    if (absl::Status s = outbox_->Enqueue(txn, e); !s.ok()) return s;
    return stored;
  });
}

absl::StatusOr<std::vector<v1::PullRequest>> PostgresReviewStore::ListPullRequests(const std::string& repository_id,
                                                                                   bool include_closed) {
  return pool_->RunStatementWithResult<std::vector<v1::PullRequest>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::vector<v1::PullRequest>> {
        std::vector<v1::PullRequest> out;
        for (const auto& row : txn.exec_prepared("rv_pr_list", repository_id, include_closed,
                                                 static_cast<int>(v1::PULL_REQUEST_STATE_OPEN))) {
          absl::StatusOr<v1::PullRequest> pr = PullRequestFromBytes(row[0]);
          if (!pr.ok()) return pr.status();
          *pr->mutable_update_time() = FromEpoch(row[1].as<double>());
          out.push_back(std::move(*pr));
        }
        return out;
      });
}

absl::StatusOr<std::vector<v1::WatchReviewEventsResponse>> PostgresReviewStore::ReviewEventsAfter(
    int64_t after, const std::vector<std::string>& repository_ids, int limit) {
  // Ids are validated DNS labels, so a plain array literal is safe.
  std::string ids = absl::StrCat("{", absl::StrJoin(repository_ids, ","), "}");
  return pool_->RunStatementWithResult<std::vector<v1::WatchReviewEventsResponse>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::vector<v1::WatchReviewEventsResponse>> {
        std::vector<v1::WatchReviewEventsResponse> out;
        for (const auto& row : txn.exec_prepared("rv_events_after", after, ids, limit)) {
          v1::WatchReviewEventsResponse e;
          if (!e.ParseFromString(pqxx::binarystring(row[1]).str())) {
            return absl::InternalError("stored review event is corrupt");
          }
          e.set_cursor(row[0].as<std::string>());
          out.push_back(std::move(e));
        }
        return out;
      });
}

absl::Status PostgresReviewStore::RecordEvent(const v1::Event& audit) {
  return pool_->RunInTransaction([&](pqxx::work& txn) -> absl::Status { return outbox_->Enqueue(txn, audit); });
}

}  // namespace ferry::repo_watcher
