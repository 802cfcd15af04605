#include "services/audit/postgres_event_store.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include <libpq-fe.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/json/json.h"
#include "common/postgres/pq_status.h"
#include "services/audit/canonical_json.h"
#include "services/audit/event_encoder.h"

namespace ferry::audit {
namespace {

using google::protobuf::util::TimeUtil;

constexpr char kColumns[] =
    "sequence, (extract(epoch FROM event_time) * 1000000)::bigint, "
    "(extract(epoch FROM append_time) * 1000000)::bigint, service, actor_id, actor_kind, actor_display_name, "
    "action, repository_id, application_id, environment_id, plan_id, deployment_id, commit_sha, ref, message, "
    "details::text, idempotency_key, prev_hash, hash";

constexpr char kFilter[] =
    " WHERE ($1::bigint IS NULL OR event_time >= timestamptz 'epoch' + $1::bigint * interval '1 microsecond')"
    " AND ($2::bigint IS NULL OR event_time < timestamptz 'epoch' + $2::bigint * interval '1 microsecond')"
    " AND ($3::text = '' OR actor_id = $3::text)"
    " AND ($4::text[] = '{}' OR action = ANY($4::text[]))"
    " AND ($5::text = '' OR repository_id = $5::text)"
    " AND ($6::text = '' OR application_id = $6::text)"
    " AND ($7::text = '' OR environment_id = $7::text)"
    " AND ($8::text = '' OR commit_sha = $8::text)"
    " AND ($9::text = '' OR plan_id = $9::text)"
    " AND ($10::text = '' OR deployment_id = $10::text)"
    " AND ($11::text = '' OR service = $11::text)"
    " AND sequence > $12 AND sequence < $13";

const std::string kQueryAsc = absl::StrCat("SELECT ", kColumns, " FROM audit.events", kFilter,
                                           " ORDER BY sequence ASC LIMIT $14");
const std::string kQueryDesc = absl::StrCat("SELECT ", kColumns, " FROM audit.events", kFilter,
                                            " ORDER BY sequence DESC LIMIT $14");

// Chain verification streams rows with binary COPY: no per-row result
// objects, timestamps as integers, text without escaping. COPY takes no bind
// parameters, so the bounds are set as session settings first
// (kSetChainRange, parameterised) and read back by the query.
constexpr char kSetChainRange[] =
    "SELECT set_config('ferry.chain_after', $1::bigint::text, false),"
    " set_config('ferry.chain_before', $2::bigint::text, false)";
constexpr char kStreamChain[] =
    "COPY (SELECT sequence, event_time, append_time, service, actor_id, actor_kind, actor_display_name, action,"
    " repository_id, application_id, environment_id, plan_id, deployment_id, commit_sha, ref, message, details,"
    " idempotency_key, prev_hash, hash FROM audit.events"
    " WHERE sequence > current_setting('ferry.chain_after')::bigint"
    " AND sequence < current_setting('ferry.chain_before')::bigint ORDER BY sequence) TO STDOUT (FORMAT binary)";
constexpr int kStreamChainColumns = 20;

constexpr char kRecordColumns[] =
    "sequence bigint, event_time_us bigint, append_time_us bigint, service text, actor_id text, actor_kind text, "
    "actor_display_name text, action text, repository_id text, application_id text, environment_id text, "
    "plan_id text, deployment_id text, commit_sha text, ref text, message text, details jsonb, "
    "idempotency_key text, prev_hash text, hash text";

const std::string kInsertChained = absl::StrCat(
    "WITH moved AS (UPDATE audit.chain_head SET sequence = $3, hash = $4"
    " WHERE singleton AND sequence = $1 AND hash = $2 RETURNING 1)"
    " INSERT INTO audit.events (sequence, event_time, append_time, service, actor_id, actor_kind,"
    " actor_display_name, action, repository_id, application_id, environment_id, plan_id, deployment_id,"
    " commit_sha, ref, message, details, idempotency_key, prev_hash, hash)"
    " SELECT r.sequence, timestamptz 'epoch' + r.event_time_us * interval '1 microsecond',"
    " timestamptz 'epoch' + r.append_time_us * interval '1 microsecond', r.service, r.actor_id, r.actor_kind,"
    " r.actor_display_name, r.action, r.repository_id, r.application_id, r.environment_id, r.plan_id,"
    " r.deployment_id, r.commit_sha, r.ref, r.message, r.details, r.idempotency_key, r.prev_hash, r.hash"
    " FROM moved, jsonb_to_recordset($5::jsonb) AS r(",
    kRecordColumns, ")");

const std::string kFindByKeys = absl::StrCat(
    "SELECT ", kColumns, " FROM audit.events WHERE (service, idempotency_key) IN"
    " (SELECT k.service, k.idempotency_key FROM jsonb_to_recordset($1::jsonb) AS k(service text,"
    " idempotency_key text))");

constexpr char kHead[] = "SELECT sequence, hash FROM audit.chain_head WHERE singleton";
constexpr char kLastEvent[] = "SELECT sequence, hash FROM audit.events ORDER BY sequence DESC LIMIT 1";

constexpr char kCheckpointColumns[] =
    "sequence, head_hash, signature, public_key_id, algorithm, (extract(epoch FROM create_time) * 1000000)::bigint";
const std::string kInsertCheckpoint =
    "INSERT INTO audit.checkpoints (sequence, head_hash, signature, public_key_id, algorithm, create_time)"
    " VALUES ($1, $2, decode($3, 'hex'), $4, $5, timestamptz 'epoch' + $6::bigint * interval '1 microsecond')"
    " ON CONFLICT (sequence) DO NOTHING";
const std::string kLatestCheckpoint = absl::StrCat("SELECT ", kCheckpointColumns,
                                                   " FROM audit.checkpoints ORDER BY sequence DESC LIMIT 1");
const std::string kCheckpointAtOrBefore = absl::StrCat(
    "SELECT ", kCheckpointColumns, " FROM audit.checkpoints WHERE sequence <= $1 ORDER BY sequence DESC LIMIT 1");
const std::string kCheckpointsInRange = absl::StrCat(
    "SELECT ", kCheckpointColumns, " FROM audit.checkpoints WHERE sequence BETWEEN $1 AND $2 ORDER BY sequence");

int64_t Micros(const google::protobuf::Timestamp& t) { return TimeUtil::TimestampToMicroseconds(t); }

std::string EnumName(const std::string& name, int value) { return value == 0 ? std::string() : name; }

// Appends `e` as one element of the jsonb_to_recordset array of
// kInsertChained.
absl::Status AppendRecord(const v1::Event& e, std::string* out) {
  absl::Status st;
  auto text = [&](const char* key, absl::string_view value) {
    if (!st.ok()) return;
    absl::StrAppend(out, ",\"", key, "\":");
    st = AppendJsonString(value, out);
  };
  absl::StrAppend(out, "{\"sequence\":", e.sequence(), ",\"event_time_us\":", Micros(e.time()),
                  ",\"append_time_us\":", Micros(e.append_time()));
  text("service", e.service());
  text("actor_id", e.actor().id());
  text("actor_kind", EnumName(v1::ActorKind_Name(e.actor().kind()), e.actor().kind()));
  text("actor_display_name", e.actor().display_name());
  text("action", v1::AuditAction_Name(e.action()));
  text("repository_id", e.subject().repository_id());
  text("application_id", e.subject().application_id());
  text("environment_id", e.subject().environment_id());
  text("plan_id", e.subject().plan_id());
  text("deployment_id", e.subject().deployment_id());
  text("commit_sha", e.subject().commit_sha());
  text("ref", e.subject().ref());
  text("message", e.message());
  text("idempotency_key", e.idempotency_key());
  text("prev_hash", e.prev_hash());
  text("hash", e.hash());
  if (!st.ok()) return st;
  out->append(",\"details\":");
  if (e.has_details()) {
    st = AppendCanonicalStruct(e.details(), out);
    if (!st.ok()) return st;
  } else {
    out->append("null");
  }
  out->push_back('}');
  return absl::OkStatus();
}

// JSON (as stored in jsonb) to google.protobuf.Value, as protobuf's JSON
// parser would: every number becomes a double.
void JsonToValue(const nlohmann::json& j, google::protobuf::Value* v) {
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      v->set_null_value(google::protobuf::NULL_VALUE);
      break;
    case nlohmann::json::value_t::boolean:
      v->set_bool_value(j.get<bool>());
      break;
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
      v->set_number_value(j.get<double>());
      break;
    case nlohmann::json::value_t::string:
      v->set_string_value(j.get_ref<const std::string&>());
      break;
    case nlohmann::json::value_t::array: {
      auto* list = v->mutable_list_value();
      for (const auto& item : j) JsonToValue(item, list->add_values());
      break;
    }
    default: {
      auto* fields = v->mutable_struct_value()->mutable_fields();
      for (auto it = j.begin(); it != j.end(); ++it) JsonToValue(it.value(), &(*fields)[it.key()]);
    }
  }
}

// Rebuilds the event exactly as it was chained (see AuditLog's
// normalisation): actor always present, subject only when a field is set,
// details only when stored.
absl::StatusOr<v1::Event> RowToEvent(const pqxx::row& row) {
  v1::Event e;
  e.set_sequence(row[0].as<int64_t>());
  *e.mutable_time() = TimeUtil::MicrosecondsToTimestamp(row[1].as<int64_t>());
  *e.mutable_append_time() = TimeUtil::MicrosecondsToTimestamp(row[2].as<int64_t>());
  e.set_service(row[3].as<std::string>());
  v1::Actor* actor = e.mutable_actor();
  actor->set_id(row[4].as<std::string>());
  v1::ActorKind kind = v1::ACTOR_KIND_UNSPECIFIED;
  std::string kind_name = row[5].as<std::string>();
  if (!kind_name.empty() && !v1::ActorKind_Parse(kind_name, &kind)) {
    return absl::DataLossError(absl::StrCat("event ", e.sequence(), ": unknown actor kind '", kind_name, "'"));
  }
  actor->set_kind(kind);
  actor->set_display_name(row[6].as<std::string>());
  v1::AuditAction action = v1::AUDIT_ACTION_UNSPECIFIED;
  std::string action_name = row[7].as<std::string>();
  if (!v1::AuditAction_Parse(action_name, &action)) {
    return absl::DataLossError(absl::StrCat("event ", e.sequence(), ": unknown action '", action_name, "'"));
  }
  e.set_action(action);
  v1::Subject subject;
  subject.set_repository_id(row[8].as<std::string>());
  subject.set_application_id(row[9].as<std::string>());
  subject.set_environment_id(row[10].as<std::string>());
  subject.set_plan_id(row[11].as<std::string>());
  subject.set_deployment_id(row[12].as<std::string>());
  subject.set_commit_sha(row[13].as<std::string>());
  subject.set_ref(row[14].as<std::string>());
  if (subject.ByteSizeLong() > 0) *e.mutable_subject() = std::move(subject);
  e.set_message(row[15].as<std::string>());
  if (!row[16].is_null()) {
    absl::StatusOr<nlohmann::json> details = ParseJson(row[16].c_str());
    if (details.ok() && !details->is_object()) details = absl::InvalidArgumentError("not an object");
    if (!details.ok()) {
      return absl::DataLossError(
          absl::StrCat("event ", e.sequence(), ": details unreadable: ", details.status().message()));
    }
    for (auto it = details->begin(); it != details->end(); ++it) {
      JsonToValue(it.value(), &(*e.mutable_details()->mutable_fields())[it.key()]);
    }
  }
  e.set_idempotency_key(row[17].as<std::string>());
  e.set_prev_hash(row[18].as<std::string>());
  e.set_hash(row[19].as<std::string>());
  return e;
}

v1::Checkpoint RowToCheckpoint(const pqxx::row& row) {
  v1::Checkpoint c;
  c.set_sequence(row[0].as<int64_t>());
  c.set_head_hash(row[1].as<std::string>());
  pqxx::binarystring sig(row[2]);
  c.set_signature(sig.str());
  c.set_public_key_id(row[3].as<std::string>());
  v1::SigningAlgorithm algorithm = v1::SIGNING_ALGORITHM_UNSPECIFIED;
  v1::SigningAlgorithm_Parse(row[4].as<std::string>(), &algorithm);
  c.set_algorithm(algorithm);
  *c.mutable_create_time() = TimeUtil::MicrosecondsToTimestamp(row[5].as<int64_t>());
  return c;
}

std::optional<int64_t> OptionalMicros(bool has, const google::protobuf::Timestamp& t) {
  if (!has) return std::nullopt;
  return Micros(t);
}

std::string ActionsArray(const v1::EventFilter& f) {
  std::vector<std::string> names;
  for (int a : f.actions()) names.push_back(v1::AuditAction_Name(static_cast<v1::AuditAction>(a)));
  return absl::StrCat("{", absl::StrJoin(names, ","), "}");
}

}  // namespace

PostgresEventStore::PostgresEventStore(postgres::ConnectionPool& pool) : pool_(pool) {
  pool_.Prepare("audit_query_asc", kQueryAsc);
  pool_.Prepare("audit_query_desc", kQueryDesc);
  pool_.Prepare("audit_head", kHead);
  pool_.Prepare("audit_last_event", kLastEvent);
  pool_.Prepare("audit_insert_checkpoint", kInsertCheckpoint);
  pool_.Prepare("audit_latest_checkpoint", kLatestCheckpoint);
  pool_.Prepare("audit_checkpoint_at_or_before", kCheckpointAtOrBefore);
  pool_.Prepare("audit_checkpoints_in_range", kCheckpointsInRange);
}

PostgresEventStore::~PostgresEventStore() = default;

absl::Status PostgresEventStore::WithWriter(const std::function<absl::Status(pqxx::connection&)>& fn,
                                            const char* context) {
  if (writer_ == nullptr) {
    absl::StatusOr<std::unique_ptr<pqxx::connection>> conn = pool_.OpenDedicated();
    if (!conn.ok()) return conn.status();
    try {
      pqxx::nontransaction setup(**conn);
      setup.exec0(absl::StrCat("SET ROLE ", kWriterRole));
      // Appends commit at the server's synchronous_commit level (durable
      // by default): the Appender answers a whole group after one commit,
      // so one WAL flush covers every request in it.
      (*conn)->prepare("audit_writer_head", kHead);
      (*conn)->prepare("audit_find_by_keys", kFindByKeys);
    } catch (const std::exception& e) {
      return postgres::StatusFromException(e, "open audit writer connection");
    }
    writer_ = std::move(*conn);
  }
  try {
    return fn(*writer_);
  } catch (const pqxx::broken_connection& e) {
    writer_.reset();
    return postgres::StatusFromException(e, context);
  } catch (const std::exception& e) {
    if (writer_ != nullptr && !writer_->is_open()) writer_.reset();
    return postgres::StatusFromException(e, context);
  }
}

absl::StatusOr<ChainHead> PostgresEventStore::ReadWriterHead() {
  ChainHead head;
  absl::Status status = WithWriter(
      [&](pqxx::connection& conn) {
        pqxx::nontransaction tx(conn);
        pqxx::row row = tx.exec_prepared1("audit_writer_head");
        head.sequence = row[0].as<int64_t>();
        head.hash = row[1].as<std::string>();
        return absl::OkStatus();
      },
      "read chain head");
  if (!status.ok()) return status;
  return head;
}

absl::StatusOr<std::vector<v1::Event>> PostgresEventStore::FindByIdempotencyKeys(
    const std::vector<std::pair<std::string, std::string>>& keys) {
  nlohmann::json records = nlohmann::json::array();
  for (const auto& [service, key] : keys) records.push_back({{"service", service}, {"idempotency_key", key}});
  absl::StatusOr<std::string> records_text = DumpJson(records);
  if (!records_text.ok()) return records_text.status();
  std::vector<v1::Event> out;
  absl::Status status = WithWriter(
      [&](pqxx::connection& conn) -> absl::Status {
        pqxx::nontransaction tx(conn);
        pqxx::result rows = tx.exec_prepared("audit_find_by_keys", *records_text);
        for (const pqxx::row& row : rows) {
          absl::StatusOr<v1::Event> e = RowToEvent(row);
          if (!e.ok()) return e.status();
          out.push_back(std::move(*e));
        }
        return absl::OkStatus();
      },
      "find events by idempotency key");
  if (!status.ok()) return status;
  return out;
}

absl::Status PostgresEventStore::InsertChained(const ChainHead& expected, const std::vector<const v1::Event*>& events) {
  SendInsert(expected, events);
  return AwaitCommitted();
}

absl::StatusOr<std::vector<v1::Event>> PostgresEventStore::Query(const EventQuery& q) {
  const v1::EventFilter& f = q.filter;
  return pool_.RunInTransactionWithResult<std::vector<v1::Event>>(
      [&](pqxx::work& txn) -> absl::StatusOr<std::vector<v1::Event>> {
        // Plan each query for its actual filter, so unset filters fold away
        // and the matching index is used.
        txn.exec0("SET LOCAL plan_cache_mode = force_custom_plan");
        pqxx::result rows = txn.exec_prepared(
            q.descending ? "audit_query_desc" : "audit_query_asc", OptionalMicros(f.has_start_time(), f.start_time()),
            OptionalMicros(f.has_end_time(), f.end_time()), f.actor(), ActionsArray(f), f.repository_id(),
            f.application_id(), f.environment_id(), f.commit_sha(), f.plan_id(), f.deployment_id(), f.service(),
            q.after, q.before, q.limit);
        std::vector<v1::Event> out;
        out.reserve(rows.size());
        for (const pqxx::row& row : rows) {
          absl::StatusOr<v1::Event> e = RowToEvent(row);
          if (!e.ok()) return e.status();
          out.push_back(std::move(*e));
        }
        return out;
      });
}

namespace {

struct PgConnCloser {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
struct PgResultClearer {
  void operator()(PGresult* result) const { PQclear(result); }
};
struct PgMemFreer {
  void operator()(char* buffer) const { PQfreemem(buffer); }
};
using PgConn = std::unique_ptr<PGconn, PgConnCloser>;
using PgResult = std::unique_ptr<PGresult, PgResultClearer>;

constexpr char kCopySignature[] = "PGCOPY\n\377\r\n";  // and a NUL: 11 bytes
// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
constexpr int64_t kPostgresEpochMicros = 946684800LL * 1000000;

uint16_t Be16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>(u[0] << 8 | u[1]);
}
uint32_t Be32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint32_t>(u[0]) << 24 | static_cast<uint32_t>(u[1]) << 16 | static_cast<uint32_t>(u[2]) << 8 |
         u[3];
}
int64_t Be64(const char* p) { return static_cast<int64_t>(static_cast<uint64_t>(Be32(p)) << 32 | Be32(p + 4)); }

// A timestamptz in binary (microseconds since 2000-01-01) as seconds and
// nanoseconds since the Unix epoch; false for +-infinity or out of range.
bool SplitTimestamp(absl::string_view field, int64_t* seconds, int32_t* nanos) {
  if (field.size() != 8) return false;
  int64_t micros;
  if (__builtin_add_overflow(Be64(field.data()), kPostgresEpochMicros, &micros)) return false;
  int64_t s = micros / 1000000;
  int64_t rem = micros % 1000000;
  if (rem < 0) {
    rem += 1000000;
    --s;
  }
  *seconds = s;
  *nanos = static_cast<int32_t>(rem * 1000);
  return s >= google::protobuf::util::TimeUtil::kTimestampMinSeconds &&
         s <= google::protobuf::util::TimeUtil::kTimestampMaxSeconds;
}

// The fields of one kStreamChain row in binary COPY format, exactly as
// RowToEvent + CanonicalJson see them (same presence rules: actor always,
// subject when a field is set, details when stored). The views point into
// `columns`. A row with no event form gets `error` (and still its links).
StoredChainRow ChainRowFromColumns(const absl::string_view* columns, const bool* is_null) {
  StoredChainRow row;
  EventFields& f = row.fields;
  f.sequence = Be64(columns[0].data());
  row.prev_hash = columns[18];
  row.hash = columns[19];
  for (int i = 1; i < kStreamChainColumns; ++i) {
    if (is_null[i] && i != 16) {
      row.error = absl::DataLossError(absl::StrCat("column ", i, " is NULL"));
      return row;
    }
  }
  f.has_time = SplitTimestamp(columns[1], &f.time_seconds, &f.time_nanos);
  f.has_append_time = SplitTimestamp(columns[2], &f.append_time_seconds, &f.append_time_nanos);
  if (!f.has_time || !f.has_append_time) {
    row.error = absl::DataLossError("event_time or append_time is not a representable time");
    return row;
  }
  f.service = columns[3];
  f.has_actor = true;
  f.actor_id = columns[4];
  f.actor_kind = columns[5];
  f.actor_display_name = columns[6];
  f.action = columns[7];
  f.repository_id = columns[8];
  f.application_id = columns[9];
  f.environment_id = columns[10];
  f.plan_id = columns[11];
  f.deployment_id = columns[12];
  f.commit_sha = columns[13];
  f.ref = columns[14];
  f.has_subject = !(f.repository_id.empty() && f.application_id.empty() && f.environment_id.empty() &&
                    f.plan_id.empty() && f.deployment_id.empty() && f.commit_sha.empty() && f.ref.empty());
  f.message = columns[15];
  if (!is_null[16]) {
    // jsonb in binary: a version byte (1), then the JSON text.
    if (columns[16].empty() || columns[16][0] != 1) {
      row.error = absl::DataLossError("details: unknown jsonb binary format");
      return row;
    }
    f.has_details = true;
    f.details = columns[16].substr(1);
  }
  f.idempotency_key = columns[17];
  return row;
}

absl::Status CopyFormatError(const char* what) {
  return absl::InternalError(absl::StrCat("reading the chain: unexpected COPY data (", what, ")"));
}

// The error libpq reports on `conn` (its last message), as a Status.
absl::Status LibpqError(PGconn* conn, const char* context, const PGresult* result = nullptr) {
  const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const char* message = result != nullptr ? PQresultErrorMessage(result) : PQerrorMessage(conn);
  return postgres::StatusFromSqlState(state != nullptr ? state : "", message != nullptr ? message : "", context,
                                      PQstatus(conn) != CONNECTION_OK);
}

// A libpq connection of its own, opened with `pool`'s connection string
// (binary COPY and pipelined appends are beyond libpqxx 6).
absl::StatusOr<PgConn> Connect(postgres::ConnectionPool& pool, const char* context) {
  std::string conninfo;
  absl::Status status = pool.WithConnection([&](pqxx::connection& conn) {
    conninfo = conn.options();
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  PgConn conn(PQconnectdb(conninfo.c_str()));
  if (conn == nullptr || PQstatus(conn.get()) != CONNECTION_OK) {
    return absl::UnavailableError(absl::StrCat(context, ": PostgreSQL at ", pool.address(), ": ",
                                               conn == nullptr ? "out of memory" : PQerrorMessage(conn.get())));
  }
  if (PQsetClientEncoding(conn.get(), "UTF8") != 0) return LibpqError(conn.get(), context);
  return conn;
}

}  // namespace


void PostgresEventStore::PipeCloser::operator()(pg_conn* conn) const { PQfinish(conn); }

// Each group is one prepared statement in its own implicit transaction: the
// statement, a flush request (so that its result comes back before the
// commit, and the Appender can send the next group behind it), and a sync
// (the commit, durable at the server's synchronous_commit).
void PostgresEventStore::SendInsert(const ChainHead& expected, const std::vector<const v1::Event*>& events) {
  Sent& group = sent_.emplace_back();
  group.rows = events.size();
  group.from = expected.sequence;
  if (events.empty()) return;
  std::string records = "[";
  records.reserve(events.size() * 700);
  for (size_t i = 0; i < events.size(); ++i) {
    if (i > 0) records.push_back(',');
    group.status = AppendRecord(*events[i], &records);
    if (!group.status.ok()) return;
  }
  records.push_back(']');
  if (pipe_ == nullptr) {
    absl::StatusOr<PgConn> conn = Connect(pool_, "open audit writer connection");
    if (!conn.ok()) {
      group.status = conn.status();
      return;
    }
    PGconn* c = conn->get();
    PgResult role(PQexec(c, absl::StrCat("SET ROLE ", kWriterRole).c_str()));
    if (PQresultStatus(role.get()) != PGRES_COMMAND_OK) {
      group.status = LibpqError(c, "open audit writer connection", role.get());
      return;
    }
    PgResult prepared(PQprepare(c, "audit_insert_chained", kInsertChained.c_str(), 0, nullptr));
    if (PQresultStatus(prepared.get()) != PGRES_COMMAND_OK) {
      group.status = LibpqError(c, "open audit writer connection", prepared.get());
      return;
    }
    if (PQenterPipelineMode(c) != 1) {
      group.status = LibpqError(c, "open audit writer connection");
      return;
    }
    pipe_.reset(conn->release());
    reset_pipe_ = false;
  }
  if (reset_pipe_) {
    group.status = absl::UnavailableError("append events: the writer connection failed; retry");
    return;
  }
  const std::string from_sequence = absl::StrCat(expected.sequence);
  const std::string to_sequence = absl::StrCat(events.back()->sequence());
  const char* values[5] = {from_sequence.c_str(), expected.hash.c_str(), to_sequence.c_str(),
                           events.back()->hash().c_str(), records.c_str()};
  if (PQsendQueryPrepared(pipe_.get(), "audit_insert_chained", 5, values, nullptr, nullptr, 0) != 1 ||
      PQsendFlushRequest(pipe_.get()) != 1 || PQpipelineSync(pipe_.get()) != 1) {
    group.status = LibpqError(pipe_.get(), "append events");
    reset_pipe_ = true;  // the pipeline may hold part of this group
    return;
  }
  group.sent = true;
}

void PostgresEventStore::ReadInserted(Sent& group) {
  if (!group.sent || group.inserted) return;
  group.inserted = true;
  PgResult result(PQgetResult(pipe_.get()));
  if (result == nullptr) {
    group.status = LibpqError(pipe_.get(), "append events");
    group.sent = false;
    reset_pipe_ = true;
    return;
  }
  const ExecStatusType state = PQresultStatus(result.get());
  if (state == PGRES_COMMAND_OK || state == PGRES_TUPLES_OK) {
    const uint64_t rows = std::strtoull(PQcmdTuples(result.get()), nullptr, 10);
    if (rows == 0) {
      group.status = absl::AbortedError(absl::StrCat("chain head moved from ", group.from, " meanwhile"));
    } else if (rows != group.rows) {
      group.status = absl::InternalError(absl::StrCat("inserted ", rows, " of ", group.rows, " events"));
    }
  } else {
    group.status = LibpqError(pipe_.get(), "append events", result.get());
  }
  // The statement's results end with a null result.
  PgResult end(PQgetResult(pipe_.get()));
  if (end != nullptr) {
    if (group.status.ok()) group.status = absl::InternalError("append events: unexpected second result");
    group.sent = false;
    reset_pipe_ = true;
  }
}

absl::Status PostgresEventStore::AwaitInserted() {
  ReadInserted(sent_.front());
  return sent_.front().status;
}

absl::Status PostgresEventStore::AwaitCommitted() {
  ReadInserted(sent_.front());
  Sent group = std::move(sent_.front());
  sent_.pop_front();
  // Read up to the group's sync: its commit.
  for (int nulls = 0; group.sent;) {
    PgResult result(PQgetResult(pipe_.get()));
    if (result == nullptr) {
      if (PQstatus(pipe_.get()) == CONNECTION_OK && ++nulls < 3) continue;
      // The commit's outcome is unknown.
      group.status = absl::UnavailableError(
          absl::StrCat("append events: the writer connection failed before the commit was confirmed: ",
                       LibpqError(pipe_.get(), "commit").message()));
      reset_pipe_ = true;
      break;
    }
    const ExecStatusType state = PQresultStatus(result.get());
    if (state == PGRES_PIPELINE_SYNC) break;
    if (state == PGRES_FATAL_ERROR && group.status.ok()) {
      group.status = LibpqError(pipe_.get(), "commit appended events", result.get());
    }
  }
  if (sent_.empty() && reset_pipe_) pipe_.reset();
  return group.status;
}

absl::Status PostgresEventStore::StreamChain(int64_t after, int64_t before,
                                             const std::function<bool(const StoredChainRow&)>& visit) {
  absl::StatusOr<PgConn> connected = Connect(pool_, "reading the chain");
  if (!connected.ok()) return connected.status();
  PgConn conn = *std::move(connected);
  auto failed = [&](const char* context) { return LibpqError(conn.get(), context); };
  const std::string bounds[2] = {absl::StrCat(after), absl::StrCat(before)};
  const char* values[2] = {bounds[0].c_str(), bounds[1].c_str()};
  PgResult set(PQexecParams(conn.get(), kSetChainRange, 2, nullptr, values, nullptr, nullptr, 0));
  if (PQresultStatus(set.get()) != PGRES_TUPLES_OK) return failed("reading the chain: set range");
  PgResult copy(PQexec(conn.get(), kStreamChain));
  if (PQresultStatus(copy.get()) != PGRES_COPY_OUT) return failed("reading the chain");

  absl::string_view columns[kStreamChainColumns];
  bool is_null[kStreamChainColumns];
  bool first_message = true;
  for (;;) {
    char* raw = nullptr;
    const int n = PQgetCopyData(conn.get(), &raw, /*async=*/0);
    if (n == -1) break;
    if (n < 0) return failed("reading the chain");
    std::unique_ptr<char, PgMemFreer> buffer(raw);
    const char* data = raw;
    size_t size = static_cast<size_t>(n);
    size_t pos = 0;
    if (first_message) {
      first_message = false;
      if (size < 19 || std::memcmp(data, kCopySignature, 11) != 0) return CopyFormatError("no header");
      pos = 19 + static_cast<size_t>(Be32(data + 15));
      if (pos > size) return CopyFormatError("header");
    }
    // Each message holds whole tuples (one per row; the header and the
    // trailer ride along).
    while (pos < size) {
      if (size - pos < 2) return CopyFormatError("truncated tuple");
      const auto fields = static_cast<int16_t>(Be16(data + pos));
      pos += 2;
      if (fields == -1) continue;  // the trailer
      if (fields != kStreamChainColumns) return CopyFormatError("column count");
      for (int i = 0; i < kStreamChainColumns; ++i) {
        if (size - pos < 4) return CopyFormatError("truncated field");
        const auto length = static_cast<int32_t>(Be32(data + pos));
        pos += 4;
        is_null[i] = length < 0;
        if (length < 0) {
          columns[i] = absl::string_view();
          continue;
        }
        if (size - pos < static_cast<size_t>(length)) return CopyFormatError("truncated field");
        columns[i] = absl::string_view(data + pos, static_cast<size_t>(length));
        pos += static_cast<size_t>(length);
      }
      if (is_null[0] || columns[0].size() != 8) return CopyFormatError("sequence");
      // Stopping early drops the connection, which ends the COPY.
      if (!visit(ChainRowFromColumns(columns, is_null))) return absl::OkStatus();
    }
  }
  PgResult done(PQgetResult(conn.get()));
  if (PQresultStatus(done.get()) != PGRES_COMMAND_OK) return failed("reading the chain");
  return absl::OkStatus();
}

absl::StatusOr<ChainHead> PostgresEventStore::LastEvent() {
  return pool_.RunInTransactionWithResult<ChainHead>([&](pqxx::work& txn) -> absl::StatusOr<ChainHead> {
    pqxx::result rows = txn.exec_prepared("audit_last_event");
    ChainHead head{0, std::string(64, '0')};
    if (!rows.empty()) {
      head.sequence = rows[0][0].as<int64_t>();
      head.hash = rows[0][1].as<std::string>();
    }
    return head;
  });
}

absl::StatusOr<ChainHead> PostgresEventStore::StoredHead() {
  return pool_.RunInTransactionWithResult<ChainHead>([&](pqxx::work& txn) -> absl::StatusOr<ChainHead> {
    pqxx::row row = txn.exec_prepared1("audit_head");
    return ChainHead{row[0].as<int64_t>(), row[1].as<std::string>()};
  });
}

absl::Status PostgresEventStore::InsertCheckpoint(const v1::Checkpoint& c) {
  return pool_.RunInTransaction([&](pqxx::work& txn) {
    txn.exec0(absl::StrCat("SET LOCAL ROLE ", kWriterRole));
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string hex;
    for (unsigned char b : c.signature()) {
      hex += kDigits[b >> 4];
      hex += kDigits[b & 0xf];
    }
    txn.exec_prepared("audit_insert_checkpoint", c.sequence(), c.head_hash(), hex, c.public_key_id(),
                      v1::SigningAlgorithm_Name(c.algorithm()), Micros(c.create_time()));
    return absl::OkStatus();
  });
}

absl::StatusOr<std::optional<v1::Checkpoint>> PostgresEventStore::LatestCheckpoint(int64_t sequence) {
  return pool_.RunInTransactionWithResult<std::optional<v1::Checkpoint>>(
      [&](pqxx::work& txn) -> absl::StatusOr<std::optional<v1::Checkpoint>> {
        pqxx::result rows = sequence == 0 ? txn.exec_prepared("audit_latest_checkpoint")
                                          : txn.exec_prepared("audit_checkpoint_at_or_before", sequence);
        if (rows.empty()) return std::optional<v1::Checkpoint>();
        return std::optional<v1::Checkpoint>(RowToCheckpoint(rows[0]));
      });
}

absl::StatusOr<std::vector<v1::Checkpoint>> PostgresEventStore::CheckpointsInRange(int64_t from, int64_t to) {
  return pool_.RunInTransactionWithResult<std::vector<v1::Checkpoint>>(
      [&](pqxx::work& txn) -> absl::StatusOr<std::vector<v1::Checkpoint>> {
        std::vector<v1::Checkpoint> out;
        for (const pqxx::row& row : txn.exec_prepared("audit_checkpoints_in_range", from, to)) {
          out.push_back(RowToCheckpoint(row));
        }
        return out;
      });
}

}  // namespace ferry::audit
