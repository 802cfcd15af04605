#include "common/auth/postgres_token_store.h"

#include <google/protobuf/util/json_util.h>

#include <optional>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "common/auth/token.h"
#include "common/postgres/pq_status.h"
#include "common/postgres/text_array.h"

namespace ferry::auth {
namespace {

constexpr char kInsert[] = "access_tokens_insert";
constexpr char kLookup[] = "access_tokens_lookup";
constexpr char kLock[] = "access_tokens_lock";
constexpr char kList[] = "access_tokens_list";
constexpr char kRevoke[] = "access_tokens_revoke";
constexpr char kTouch[] = "access_tokens_touch";

// A timestamptz from microseconds since the Unix epoch, and back.
#define FERRY_TIME(n) "(timestamptz 'epoch' + $" #n "::bigint * interval '1 microsecond')"
#define FERRY_MICROS(col) "(extract(epoch FROM " col ") * 1000000)::bigint"

constexpr char kColumns[] =
    "seq, id, token_hash, subject, groups, description, created_by::text, " FERRY_MICROS("created_at") ", "
    FERRY_MICROS("expires_at") ", " FERRY_MICROS("revoked_at") ", " FERRY_MICROS("last_used_at");

std::optional<int64_t> MicrosOrNull(absl::Time t) {
  if (t == absl::InfiniteFuture() || t == absl::InfinitePast()) return std::nullopt;
  return absl::ToUnixMicros(t);
}

absl::Time TimeOr(const pqxx::field& f, absl::Time none) {
  return f.is_null() ? none : absl::FromUnixMicros(f.as<int64_t>());
}

absl::StatusOr<std::string> ActorJson(const v1::Actor& actor) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(actor, &out, options).ok()) {
    return absl::InternalError("cannot write the token's created_by as JSON");
  }
  return out;
}

absl::StatusOr<StoredToken> FromRow(const pqxx::row& row) {
  StoredToken t;
  TokenRecord& r = t.record;
  r.seq = row[0].as<int64_t>();
  r.id = row[1].as<std::string>();
  t.token_hash = pqxx::binarystring(row[2]).str();
  r.subject = row[3].as<std::string>();
  r.groups = postgres::ParseTextArray(row[4]);
  r.description = row[5].as<std::string>();
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(row[6].as<std::string>(), &r.created_by, options).ok()) {
    return absl::DataLossError(absl::StrCat("access.tokens ", r.id, ": created_by is not an Actor"));
  }
  r.create_time = TimeOr(row[7], absl::InfinitePast());
  r.expire_time = TimeOr(row[8], absl::InfiniteFuture());
  r.revoke_time = TimeOr(row[9], absl::InfiniteFuture());
  r.last_used_time = TimeOr(row[10], absl::InfinitePast());
  return t;
}

}  // namespace

PostgresTokenStore::PostgresTokenStore(postgres::ConnectionPool* pool, outbox::OutboxStore* outbox)
    : pool_(pool), outbox_(outbox) {
  pool_->Prepare(kInsert,
                 "INSERT INTO access.tokens (id, token_hash, subject, groups, description, created_by, created_at, "
                 "expires_at) VALUES ($1, $2, $3, $4::text[], $5, $6::jsonb, " FERRY_TIME(7) ", " FERRY_TIME(8) ")");
  pool_->Prepare(kLookup, absl::StrCat("SELECT ", kColumns, " FROM access.tokens WHERE id = $1"));
  pool_->Prepare(kLock, absl::StrCat("SELECT ", kColumns, " FROM access.tokens WHERE id = $1 FOR UPDATE"));
  pool_->Prepare(kList, absl::StrCat("SELECT ", kColumns,
                                     " FROM access.tokens WHERE ($1 = '' OR subject = $1)"
                                     " AND ($2 OR (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ",
                                     FERRY_TIME(3), ")))"
                                     " AND ($4::bigint = 0 OR seq < $4::bigint) ORDER BY seq DESC LIMIT $5"));
  pool_->Prepare(kRevoke, "UPDATE access.tokens SET revoked_at = " FERRY_TIME(2) " WHERE id = $1");
  pool_->Prepare(kTouch, "UPDATE access.tokens SET last_used_at = " FERRY_TIME(2) " WHERE id = $1 "
                         "AND (last_used_at IS NULL OR last_used_at < " FERRY_TIME(2) ")");
}

absl::Status PostgresTokenStore::Create(const StoredToken& token, const v1::Event& created) {
  if (outbox_ == nullptr) return absl::FailedPreconditionError("this token store records no audit events");
  const TokenRecord& r = token.record;
  absl::StatusOr<std::string> actor = ActorJson(r.created_by);
  if (!actor.ok()) return actor.status();
  return pool_->RunInTransaction([&](pqxx::work& txn) -> absl::Status {
    try {
      txn.exec_prepared0(kInsert, r.id, pqxx::binarystring(token.token_hash), r.subject, postgres::TextArray(r.groups),
                         r.description, *actor, absl::ToUnixMicros(r.create_time), MicrosOrNull(r.expire_time));
    } catch (const pqxx::unique_violation&) {
      return absl::AlreadyExistsError(absl::StrCat("API token ", TokenDisplay(r.id), " exists"));
    }
    return outbox_->Enqueue(txn, created);
  });
}

absl::StatusOr<StoredToken> PostgresTokenStore::Lookup(const std::string& id) {
  return pool_->RunStatementWithResult<StoredToken>([&](pqxx::transaction_base& txn) -> absl::StatusOr<StoredToken> {
    pqxx::result r = txn.exec_prepared(kLookup, id);
    if (r.empty()) return absl::NotFoundError(absl::StrCat("API token ", TokenDisplay(id), " not found"));
    return FromRow(r[0]);
  });
}

absl::StatusOr<TokenPage> PostgresTokenStore::List(const TokenFilter& f) {
  return pool_->RunStatementWithResult<TokenPage>([&](pqxx::transaction_base& txn) -> absl::StatusOr<TokenPage> {
    TokenPage page;
    pqxx::result rows = txn.exec_prepared(kList, f.subject, f.include_inactive, absl::ToUnixMicros(f.now),
                                          f.before_seq, f.limit + 1);
    for (const pqxx::row& row : rows) {
      if (static_cast<int>(page.tokens.size()) == f.limit) {
        page.more = true;
        break;
      }
      absl::StatusOr<StoredToken> t = FromRow(row);
      if (!t.ok()) return t.status();
      page.tokens.push_back(std::move(t->record));
    }
    return page;
  });
}

absl::StatusOr<TokenRecord> PostgresTokenStore::Revoke(const std::string& id, absl::Time when,
                                                       const std::function<v1::Event(const TokenRecord&)>& revoked) {
  if (outbox_ == nullptr) return absl::FailedPreconditionError("this token store records no audit events");
  return pool_->RunInTransactionWithResult<TokenRecord>([&](pqxx::work& txn) -> absl::StatusOr<TokenRecord> {
    pqxx::result r = txn.exec_prepared(kLock, id);
    if (r.empty()) return absl::NotFoundError(absl::StrCat("API token ", TokenDisplay(id), " not found"));
    absl::StatusOr<StoredToken> t = FromRow(r[0]);
    if (!t.ok()) return t.status();
    if (t->record.revoked()) return std::move(t->record);
    txn.exec_prepared0(kRevoke, id, absl::ToUnixMicros(when));
    t->record.revoke_time = absl::FromUnixMicros(absl::ToUnixMicros(when));
    absl::Status queued = outbox_->Enqueue(txn, revoked(t->record));
    if (!queued.ok()) return queued;
    return std::move(t->record);
  });
}

absl::Status PostgresTokenStore::TouchLastUsed(const std::string& id, absl::Time when) {
  return pool_->RunStatement([&](pqxx::transaction_base& txn) {
    txn.exec_prepared0(kTouch, id, absl::ToUnixMicros(when));
    return absl::OkStatus();
  });
}

}  // namespace ferry::auth
