#include "services/repo-watcher/postgres_repository_store.h"

#include <pqxx/pqxx>


#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/postgres/pq_status.h"
#include "common/postgres/text_array.h"
#include "google/protobuf/util/time_util.h"

namespace ferry::repo_watcher {
namespace {

using google::protobuf::Timestamp;
using google::protobuf::util::TimeUtil;

// Serialises revision inserts so cursors commit in increasing order.
constexpr int64_t kRevisionOrderLock = 0x66657272795f7277;  // "ferry_rw"

constexpr const char* kRepoColumns =
    "spec, extract(epoch from create_time)::float8, extract(epoch from update_time)::float8";

void Prepare(postgres::ConnectionPool* pool) {
  pool->Prepare("rw_repo_insert",
                "INSERT INTO repo_watcher.repositories (id, url, spec) VALUES ($1, $2, $3) "
                "RETURNING extract(epoch from create_time)::float8, extract(epoch from update_time)::float8");
  pool->Prepare("rw_status_insert", "INSERT INTO repo_watcher.repository_status (repository_id) VALUES ($1)");
  pool->Prepare("rw_repo_get", absl::StrCat("SELECT ", kRepoColumns, " FROM repo_watcher.repositories WHERE id = $1"));
  pool->Prepare("rw_repo_get_for_update",
                absl::StrCat("SELECT ", kRepoColumns, " FROM repo_watcher.repositories WHERE id = $1 FOR UPDATE"));
  pool->Prepare("rw_repo_list", absl::StrCat("SELECT ", kRepoColumns,
                                             " FROM repo_watcher.repositories WHERE id > $1 ORDER BY id LIMIT $2"));
  pool->Prepare("rw_repo_list_ids", "SELECT id FROM repo_watcher.repositories WHERE id > $1 ORDER BY id LIMIT $2");
  pool->Prepare("rw_repo_update",
                "UPDATE repo_watcher.repositories SET url = $2, spec = $3, update_time = now() "
                "WHERE id = $1 AND url = $4 AND spec = $5 RETURNING extract(epoch from create_time)::float8, extract(epoch from update_time)::float8");
  pool->Prepare("rw_repo_delete", "DELETE FROM repo_watcher.repositories WHERE id = $1");
  pool->Prepare("rw_status_get",
                "SELECT extract(epoch from last_check_time)::float8, extract(epoch from last_fetch_time)::float8, "
                "last_error, extract(epoch from last_error_time)::float8, consecutive_failures, "
                "extract(epoch from next_check_time)::float8 FROM repo_watcher.repository_status "
                "WHERE repository_id = $1");
  pool->Prepare("rw_refs_get",
                "SELECT ref, sha, accepted_sha, extract(epoch from update_time)::float8 FROM repo_watcher.ref_states "
                "WHERE repository_id = $1 ORDER BY ref");
  pool->Prepare("rw_status_record",
                "UPDATE repo_watcher.repository_status SET last_check_time = to_timestamp($2), "
                "last_fetch_time = CASE WHEN $3::float8 < 0 THEN last_fetch_time ELSE to_timestamp($3::float8) END, last_error = $4, "
                "last_error_time = CASE WHEN $4 = '' THEN last_error_time ELSE to_timestamp($2) END, "
                "consecutive_failures = $5, next_check_time = to_timestamp($6) WHERE repository_id = $1");
  // What a poll reads: the repository, its status and its refs (one row per
  // ref, or one row with NULL ref columns when it has none).
  pool->Prepare("rw_poll_read",
                "SELECT r.spec, extract(epoch from r.create_time)::float8, extract(epoch from r.update_time)::float8, "
                "extract(epoch from s.last_check_time)::float8, extract(epoch from s.last_fetch_time)::float8, "
                "s.last_error, extract(epoch from s.last_error_time)::float8, s.consecutive_failures, "
                "extract(epoch from s.next_check_time)::float8, "
                "f.ref, f.sha, f.accepted_sha, extract(epoch from f.update_time)::float8 "
                "FROM repo_watcher.repositories r JOIN repo_watcher.repository_status s ON s.repository_id = r.id "
                "LEFT JOIN repo_watcher.ref_states f ON f.repository_id = r.id WHERE r.id = $1 ORDER BY f.ref");
  // rw_poll_read for several repositories: their rows together, with the id.
  pool->Prepare("rw_poll_read_many",
                "SELECT r.spec, extract(epoch from r.create_time)::float8, extract(epoch from r.update_time)::float8, "
                "extract(epoch from s.last_check_time)::float8, extract(epoch from s.last_fetch_time)::float8, "
                "s.last_error, extract(epoch from s.last_error_time)::float8, s.consecutive_failures, "
                "extract(epoch from s.next_check_time)::float8, "
                "f.ref, f.sha, f.accepted_sha, extract(epoch from f.update_time)::float8, r.id "
                "FROM repo_watcher.repositories r JOIN repo_watcher.repository_status s ON s.repository_id = r.id "
                "LEFT JOIN repo_watcher.ref_states f ON f.repository_id = r.id WHERE r.id = ANY($1::text[]) "
                "ORDER BY r.id, f.ref");
  pool->Prepare("rw_status_record_many",
                "UPDATE repo_watcher.repository_status s SET last_check_time = to_timestamp(b.check_time), "
                "last_fetch_time = CASE WHEN b.fetch_time < 0 THEN s.last_fetch_time ELSE to_timestamp(b.fetch_time) END, "
                "last_error = b.error, "
                "last_error_time = CASE WHEN b.error = '' THEN s.last_error_time ELSE to_timestamp(b.check_time) END, "
                "consecutive_failures = b.failures, next_check_time = to_timestamp(b.next_check) "
                "FROM unnest($1::text[], $2::float8[], $3::float8[], $4::text[], $5::int[], $6::float8[]) "
                "AS b(id, check_time, fetch_time, error, failures, next_check) "
                "WHERE s.repository_id = b.id "
                "AND (s.last_check_time IS NULL OR s.last_check_time <= to_timestamp(b.check_time))");
  pool->Prepare("rw_order_lock", "SELECT pg_advisory_xact_lock($1)");
  pool->Prepare("rw_ref_insert",
                "INSERT INTO repo_watcher.ref_states (repository_id, ref, sha, accepted_sha) "
                "VALUES ($1, $2, $3, CASE WHEN $4 THEN $3 ELSE '' END) ON CONFLICT DO NOTHING");
  pool->Prepare("rw_ref_move",
                "UPDATE repo_watcher.ref_states SET sha = $3, "
                "accepted_sha = CASE WHEN $4 THEN $3 ELSE accepted_sha END, update_time = now() "
                "WHERE repository_id = $1 AND ref = $2 AND sha = $5");
  pool->Prepare("rw_ref_delete",
                "DELETE FROM repo_watcher.ref_states WHERE repository_id = $1 AND ref = $2 AND sha = $3");
  pool->Prepare("rw_ref_drop", "DELETE FROM repo_watcher.ref_states WHERE repository_id = $1 AND ref = $2");
  pool->Prepare("rw_revision_insert",
                "INSERT INTO repo_watcher.revisions (repository_id, ref, sha, rejected, revision) "
                "VALUES ($1, $2, $3, $4, $5) RETURNING cursor, extract(epoch from detect_time)::float8");
  pool->Prepare("rw_notify", absl::StrCat("SELECT pg_notify('", PostgresRepositoryStore::kRevisionChannel, "', $1)"));
  pool->Prepare("rw_revisions_after",
                "SELECT cursor, extract(epoch from detect_time)::float8, revision FROM repo_watcher.revisions "
                "WHERE cursor > $1 AND ($2 OR NOT rejected) AND ($3::text = '{}' OR repository_id = ANY($3::text::text[])) "
                "ORDER BY cursor LIMIT $4");
  const char* list_where =
      "WHERE ($1 = '' OR repository_id = $1) AND ($2 = '' OR ref = $2) AND ($3 OR NOT rejected) ";
  pool->Prepare("rw_revisions_list_asc",
                absl::StrCat("SELECT cursor, extract(epoch from detect_time)::float8, revision FROM "
                             "repo_watcher.revisions ", list_where, "AND cursor > $4 ORDER BY cursor LIMIT $5"));
  pool->Prepare("rw_revisions_list_desc",
                absl::StrCat("SELECT cursor, extract(epoch from detect_time)::float8, revision FROM "
                             "repo_watcher.revisions ", list_where,
                             "AND ($4::bigint = 0 OR cursor < $4::bigint) ORDER BY cursor DESC LIMIT $5"));
  pool->Prepare("rw_try_lock", "SELECT pg_try_advisory_lock(hashtextextended('repo_watcher/' || $1, 0))");
  pool->Prepare("rw_unlock", "SELECT pg_advisory_unlock(hashtextextended('repo_watcher/' || $1, 0))");
}

Timestamp FromEpoch(double seconds) {
  return TimeUtil::NanosecondsToTimestamp(static_cast<int64_t>(seconds * 1e9));
}

// Sets the timestamp `mut()` returns to a nullable column's time; a NULL
// leaves the field unset (calling mut() would set it, to the epoch).
template <typename Mutable>
bool SetTime(const pqxx::field& f, Mutable mut) {
  if (f.is_null()) return false;
  *mut() = FromEpoch(f.as<double>());
  return true;
}

absl::StatusOr<v1::Repository> RepoFromRow(const pqxx::row& row) {
  v1::Repository repo;
  pqxx::binarystring spec(row[0]);
  if (!repo.ParseFromString(spec.str())) return absl::InternalError("stored repository spec is corrupt");
  SetTime(row[1], [&] { return repo.mutable_create_time(); });
  SetTime(row[2], [&] { return repo.mutable_update_time(); });
  return repo;
}

absl::StatusOr<v1::Revision> RevisionFromRow(const pqxx::row& row) {
  v1::Revision rev;
  pqxx::binarystring bytes(row[2]);
  if (!rev.ParseFromString(bytes.str())) return absl::InternalError("stored revision is corrupt");
  std::string cursor = row[0].as<std::string>();
  rev.set_id(cursor);
  rev.set_cursor(cursor);
  SetTime(row[1], [&] { return rev.mutable_detect_time(); });
  return rev;
}

std::string SpecBytes(const v1::Repository& repo) {
  v1::Repository spec = repo;
  spec.clear_create_time();
  spec.clear_update_time();
  return spec.SerializeAsString();
}

std::optional<double> Epoch(const std::optional<absl::Time>& t) {
  if (!t.has_value()) return std::nullopt;
  return absl::ToDoubleSeconds(*t - absl::UnixEpoch());
}

}  // namespace

PostgresRepositoryStore::PostgresRepositoryStore(postgres::ConnectionPool* pool, outbox::OutboxStore* outbox)
    : pool_(pool), outbox_(outbox) {
  Prepare(pool_);
}

absl::StatusOr<v1::Repository> PostgresRepositoryStore::Create(const v1::Repository& repo, const v1::Event& audit) {
  return pool_->RunInTransactionWithResult<v1::Repository>([&](pqxx::work& txn) -> absl::StatusOr<v1::Repository> {
    pqxx::row row = txn.exec_prepared1("rw_repo_insert", repo.id(), repo.url(), pqxx::binarystring(SpecBytes(repo)));
    txn.exec_prepared0("rw_status_insert", repo.id());
    v1::Repository out = repo;
    SetTime(row[0], [&] { return out.mutable_create_time(); });
    SetTime(row[1], [&] { return out.mutable_update_time(); });
    absl::Status s = outbox_->Enqueue(txn, audit);
    if (!s.ok()) return s;
    return out;
  });
}

absl::StatusOr<v1::Repository> PostgresRepositoryStore::Get(const std::string& id) {
  return pool_->RunStatementWithResult<v1::Repository>([&](pqxx::transaction_base& txn) -> absl::StatusOr<v1::Repository> {
    pqxx::result r = txn.exec_prepared("rw_repo_get", id);
    if (r.empty()) return absl::NotFoundError(absl::StrCat("repository \"", id, "\" not found"));
    return RepoFromRow(r[0]);
  });
}

absl::StatusOr<std::vector<v1::Repository>> PostgresRepositoryStore::List(const std::string& after_id, int limit) {
  return pool_->RunStatementWithResult<std::vector<v1::Repository>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::vector<v1::Repository>> {
        std::vector<v1::Repository> out;
        for (const auto& row : txn.exec_prepared("rw_repo_list", after_id, limit)) {
          absl::StatusOr<v1::Repository> repo = RepoFromRow(row);
          if (!repo.ok()) return repo.status();
          out.push_back(std::move(*repo));
        }
        return out;
      });
}

absl::StatusOr<std::vector<std::string>> PostgresRepositoryStore::ListIds(const std::string& after_id, int limit) {
  return pool_->RunStatementWithResult<std::vector<std::string>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::vector<std::string>> {
        std::vector<std::string> out;
        for (const auto& row : txn.exec_prepared("rw_repo_list_ids", after_id, limit)) out.push_back(row[0].as<std::string>());
        return out;
      });
}

absl::StatusOr<v1::Repository> PostgresRepositoryStore::Update(const v1::Repository& repo,
                                                               const v1::Repository& expected,
                                                               const v1::Event& audit) {
  return pool_->RunInTransactionWithResult<v1::Repository>([&](pqxx::work& txn) -> absl::StatusOr<v1::Repository> {
    pqxx::result r = txn.exec_prepared("rw_repo_update", repo.id(), repo.url(), pqxx::binarystring(SpecBytes(repo)),
                                       expected.url(), pqxx::binarystring(SpecBytes(expected)));
    if (r.empty()) {
      if (txn.exec_prepared("rw_repo_get", repo.id()).empty()) {
        return absl::NotFoundError(absl::StrCat("repository \"", repo.id(), "\" not found"));
      }
      return absl::AbortedError(absl::StrCat("repository \"", repo.id(), "\" was changed meanwhile"));
    }
    v1::Repository out = repo;
    SetTime(r[0][0], [&] { return out.mutable_create_time(); });
    SetTime(r[0][1], [&] { return out.mutable_update_time(); });
    absl::Status s = outbox_->Enqueue(txn, audit);
    if (!s.ok()) return s;
    return out;
  });
}

absl::Status PostgresRepositoryStore::Delete(const std::string& id, const v1::Event& audit) {
  return pool_->RunInTransaction([&](pqxx::work& txn) -> absl::Status {
    pqxx::result r = txn.exec_prepared("rw_repo_delete", id);
    if (r.affected_rows() == 0) return absl::NotFoundError(absl::StrCat("repository \"", id, "\" not found"));
    return outbox_->Enqueue(txn, audit);
  });
}

absl::StatusOr<v1::RepositoryStatus> PostgresRepositoryStore::GetStatus(const std::string& id) {
  return pool_->RunInTransactionWithResult<v1::RepositoryStatus>(
      [&](pqxx::work& txn) -> absl::StatusOr<v1::RepositoryStatus> {
        pqxx::result r = txn.exec_prepared("rw_status_get", id);
        if (r.empty()) return absl::NotFoundError(absl::StrCat("repository \"", id, "\" not found"));
        v1::RepositoryStatus st;
        st.set_repository_id(id);
        SetTime(r[0][0], [&] { return st.mutable_last_check_time(); });
        SetTime(r[0][1], [&] { return st.mutable_last_fetch_time(); });
        st.set_last_error(r[0][2].as<std::string>());
        SetTime(r[0][3], [&] { return st.mutable_last_error_time(); });
        st.set_consecutive_failures(r[0][4].as<int>());
        SetTime(r[0][5], [&] { return st.mutable_next_check_time(); });
        for (const auto& row : txn.exec_prepared("rw_refs_get", id)) {
          v1::RefState* ref = st.add_refs();
          ref->set_ref(row[0].as<std::string>());
          ref->set_sha(row[1].as<std::string>());
          ref->set_accepted_sha(row[2].as<std::string>());
          SetTime(row[3], [&] { return ref->mutable_update_time(); });
        }
        return st;
      });
}

namespace {

// A poll's state from its rows of rw_poll_read (or rw_poll_read_many): the
// repository and status on every row, one row per ref (NULL ref columns
// when it has none).
absl::StatusOr<PollState> PollStateFromRows(const std::string& id, const pqxx::result& r, size_t begin, size_t end) {
  PollState state;
  absl::StatusOr<v1::Repository> repo = RepoFromRow(r[begin]);
  if (!repo.ok()) return repo.status();
  state.repository = std::move(*repo);
  v1::RepositoryStatus& st = state.status;
  st.set_repository_id(id);
  const pqxx::row first = r[begin];
  SetTime(first[3], [&] { return st.mutable_last_check_time(); });
  SetTime(first[4], [&] { return st.mutable_last_fetch_time(); });
  st.set_last_error(first[5].as<std::string>());
  SetTime(first[6], [&] { return st.mutable_last_error_time(); });
  st.set_consecutive_failures(first[7].as<int>());
  SetTime(first[8], [&] { return st.mutable_next_check_time(); });
  for (size_t i = begin; i < end; ++i) {
    const pqxx::row row = r[i];
    if (row[9].is_null()) continue;
    v1::RefState* ref = st.add_refs();
    ref->set_ref(row[9].as<std::string>());
    ref->set_sha(row[10].as<std::string>());
    ref->set_accepted_sha(row[11].as<std::string>());
    SetTime(row[12], [&] { return ref->mutable_update_time(); });
  }
  return state;
}

}  // namespace

absl::StatusOr<PollState> PostgresRepositoryStore::ReadForPoll(const std::string& id) {
  absl::StatusOr<PollState> out = absl::NotFoundError(absl::StrCat("repository \"", id, "\" not found"));
  absl::Status s = pool_->WithConnection([&](pqxx::connection& conn) -> absl::Status {
    try {
      pqxx::nontransaction n(conn);
      pqxx::result r = n.exec_prepared("rw_poll_read", id);
      if (!r.empty()) out = PollStateFromRows(id, r, 0, r.size());
    } catch (const std::exception& e) {
      return postgres::StatusFromException(e, "read repository for a poll");
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::map<std::string, PollState>> PostgresRepositoryStore::ReadForPollMany(
    const std::vector<std::string>& ids) {
  std::map<std::string, PollState> out;
  if (ids.empty()) return out;
  absl::Status s = pool_->WithConnection([&](pqxx::connection& conn) -> absl::Status {
    try {
      pqxx::nontransaction n(conn);
      pqxx::result r = n.exec_prepared("rw_poll_read_many", postgres::TextArray(ids));
      size_t begin = 0;
      while (begin < r.size()) {
        const std::string id = r[begin][13].as<std::string>();
        size_t end = begin + 1;
        while (end < r.size() && r[end][13].as<std::string>() == id) ++end;
        absl::StatusOr<PollState> one = PollStateFromRows(id, r, begin, end);
        if (one.ok()) out.emplace(id, *std::move(one));  // unreadable: its poll reads it alone
        begin = end;
      }
    } catch (const std::exception& e) {
      return postgres::StatusFromException(e, "read repositories for their polls");
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::Status PostgresRepositoryStore::RecordCheck(const CheckRecord& rec, const std::optional<v1::Event>& audit) {
  return pool_->RunInTransaction([&](pqxx::work& txn) -> absl::Status {
    pqxx::result r = txn.exec_prepared("rw_status_record", rec.repository_id, *Epoch(rec.check_time),
                                       Epoch(rec.fetch_time).value_or(-1.0), rec.error, rec.consecutive_failures,
                                       *Epoch(rec.next_check_time));
    if (r.affected_rows() == 0) {
      return absl::NotFoundError(absl::StrCat("repository \"", rec.repository_id, "\" not found"));
    }
    if (audit.has_value()) return outbox_->Enqueue(txn, *audit);
    return absl::OkStatus();
  });
}

absl::Status PostgresRepositoryStore::RecordChecks(const std::vector<CheckRecord>& records) {
  if (records.empty()) return absl::OkStatus();
  std::vector<std::string> ids, errors;
  std::string checks = "{", fetches = "{", failures = "{", nexts = "{";
  for (const CheckRecord& rec : records) {
    const char* sep = ids.empty() ? "" : ",";
    ids.push_back(rec.repository_id);
    errors.push_back(rec.error);
    absl::StrAppend(&checks, sep, absl::StrFormat("%.6f", *Epoch(rec.check_time)));
    absl::StrAppend(&fetches, sep, absl::StrFormat("%.6f", Epoch(rec.fetch_time).value_or(-1.0)));
    absl::StrAppend(&failures, sep, rec.consecutive_failures);
    absl::StrAppend(&nexts, sep, absl::StrFormat("%.6f", *Epoch(rec.next_check_time)));
  }
  for (std::string* a : {&checks, &fetches, &failures, &nexts}) a->append("}");
  return pool_->RunStatement([&](pqxx::transaction_base& txn) -> absl::Status {
    txn.exec_prepared("rw_status_record_many", postgres::TextArray(ids), checks, fetches, postgres::TextArray(errors),
                      failures, nexts);
    return absl::OkStatus();
  });
}

absl::StatusOr<v1::Revision> PostgresRepositoryStore::RecordRevision(const v1::Revision& revision,
                                                                     const std::string& expected_tip,
                                                                     const v1::Event& audit) {
  return pool_->RunInTransactionWithResult<v1::Revision>([&](pqxx::work& txn) -> absl::StatusOr<v1::Revision> {
    txn.exec_prepared("rw_order_lock", kRevisionOrderLock);
    const std::string& repo = revision.repository_id();
    const std::string& ref = revision.ref();
    pqxx::result moved;
    if (revision.ref_deleted()) {
      moved = txn.exec_prepared("rw_ref_delete", repo, ref, expected_tip);
    } else if (expected_tip.empty()) {
      moved = txn.exec_prepared("rw_ref_insert", repo, ref, revision.sha(), !revision.rejected());
    } else {
      moved = txn.exec_prepared("rw_ref_move", repo, ref, revision.sha(), !revision.rejected(), expected_tip);
    }
    if (moved.affected_rows() != 1) {
      return absl::AbortedError(absl::StrCat("ref ", ref, " of ", repo, " changed concurrently"));
    }
    v1::Revision stored = revision;
    stored.clear_id();
    stored.clear_cursor();
    stored.clear_detect_time();
    pqxx::row row = txn.exec_prepared1("rw_revision_insert", repo, ref, revision.sha(), revision.rejected(),
                                       pqxx::binarystring(stored.SerializeAsString()));
    std::string cursor = row[0].as<std::string>();
    stored.set_id(cursor);
    stored.set_cursor(cursor);
    SetTime(row[1], [&] { return stored.mutable_detect_time(); });
    v1::Event event = audit;
    (*event.mutable_details()->mutable_fields())["cursor"].set_string_value(cursor);
    absl::Status s = outbox_->Enqueue(txn, event);
    if (!s.ok()) return s;
    txn.exec_prepared("rw_notify", cursor);
    return stored;
  });
}

absl::Status PostgresRepositoryStore::DropRefState(const std::string& repository_id, const std::string& ref) {
  return pool_->RunStatement([&](pqxx::transaction_base& txn) -> absl::Status {
    txn.exec_prepared("rw_ref_drop", repository_id, ref);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<v1::Revision>> PostgresRepositoryStore::RevisionsAfter(
    int64_t after, const std::vector<std::string>& repository_ids, bool include_rejected, int limit) {
  // Ids are validated DNS labels, so a plain array literal is safe.
  std::string ids = absl::StrCat("{", absl::StrJoin(repository_ids, ","), "}");
  return pool_->RunStatementWithResult<std::vector<v1::Revision>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::vector<v1::Revision>> {
        std::vector<v1::Revision> out;
        for (const auto& row : txn.exec_prepared("rw_revisions_after", after, include_rejected, ids, limit)) {
          absl::StatusOr<v1::Revision> rev = RevisionFromRow(row);
          if (!rev.ok()) return rev.status();
          out.push_back(std::move(*rev));
        }
        return out;
      });
}

absl::StatusOr<std::vector<v1::Revision>> PostgresRepositoryStore::ListRevisions(const RevisionQuery& q) {
  return pool_->RunStatementWithResult<std::vector<v1::Revision>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::vector<v1::Revision>> {
        std::vector<v1::Revision> out;
        for (const auto& row : txn.exec_prepared(q.ascending ? "rw_revisions_list_asc" : "rw_revisions_list_desc",
                                                 q.repository_id, q.ref, q.include_rejected, q.after_cursor,
                                                 q.limit)) {
          absl::StatusOr<v1::Revision> rev = RevisionFromRow(row);
          if (!rev.ok()) return rev.status();
          out.push_back(std::move(*rev));
        }
        return out;
      });
}

absl::Status PostgresRepositoryStore::RecordEvent(const v1::Event& audit) {
  return pool_->RunInTransaction([&](pqxx::work& txn) -> absl::Status { return outbox_->Enqueue(txn, audit); });
}

absl::StatusOr<bool> PostgresRepositoryStore::WithRepositoryLock(const std::string& id,
                                                                 const std::function<void()>& fn) {
  bool acquired = false;
  absl::Status s = pool_->WithConnection([&](pqxx::connection& conn) -> absl::Status {
    try {
      {
        pqxx::nontransaction n(conn);
        acquired = n.exec_prepared1("rw_try_lock", id)[0].as<bool>();
      }
      if (!acquired) return absl::OkStatus();
      fn();
      pqxx::nontransaction n(conn);
      n.exec_prepared("rw_unlock", id);
    } catch (const std::exception& e) {
      return postgres::StatusFromException(e, "repository poll lock");
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return acquired;
}

}  // namespace ferry::repo_watcher
