#include "services/audit/postgres_history_store.h"

#include <google/protobuf/util/time_util.h>

#include <pqxx/pqxx>

#include <string>
#include <variant>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace ferry::audit {
namespace {

using google::protobuf::util::TimeUtil;

// The partial indexes of schema/004_deployment_history.sql are used only
// when a query names these actions literally (a bound parameter cannot prove
// the index predicate), so they are spelled out here.
#define FERRY_SUCCEEDED "'AUDIT_ACTION_DEPLOYMENT_SUCCEEDED'"
#define FERRY_OUTCOMES \
  "('AUDIT_ACTION_DEPLOYMENT_SUCCEEDED', 'AUDIT_ACTION_DEPLOYMENT_FAILED', 'AUDIT_ACTION_DEPLOYMENT_ROLLED_BACK')"
#define FERRY_AT(p) "(timestamptz 'epoch' + " p "::bigint * interval '1 microsecond')"

// The columns of one outcome row, from events aliased `e` (RowToOutcome reads
// them in this order).
constexpr char kOutcomeColumns[] =
    "e.sequence, (extract(epoch FROM e.event_time) * 1000000)::bigint, e.action, e.application_id,"
    " e.environment_id, e.deployment_id, e.plan_id, e.repository_id, e.ref, e.commit_sha, e.actor_id,"
    " e.actor_kind, e.actor_display_name, e.message, coalesce(e.details->>'kind', ''),"
    " coalesce(e.details->>'previous_sha', ''), coalesce(e.details->>'manifests_digest', '')";
constexpr int kOutcomeColumnCount = 17;

// What was live at T: the intervals of schema/005_deployed_intervals.sql
// that contain it (an index-only scan of deployed_intervals_live), each
// joined to its DEPLOYMENT_SUCCEEDED event by primary key. One index descent
// for all pairs; the skip scan and per-pair probe it replaced took 2,000.
const std::string kStateAt = absl::StrCat(
    "SELECT ", kOutcomeColumns,
    " FROM audit.deployed_intervals i JOIN audit.events e ON e.sequence = i.sequence"
    " WHERE i.live @> " FERRY_AT("$1")
    " AND ($2::text = '' OR i.application_id = $2::text) AND ($3::text = '' OR i.environment_id = $3::text)"
    " ORDER BY i.application_id, i.environment_id");

// The pairs with a success in [$1, $2) (a range scan of
// deployed_intervals_from), each with the last of those successes (live at
// the end of the range: nothing of the pair came after it before $2) and one
// backward probe of deployed_intervals_pair_from for its last success before
// $1: work in proportion to what changed in the range, not to every pair
// there is. The last column says which end.
const std::string kMovedBetween = absl::StrCat(
    "WITH moved AS (SELECT DISTINCT ON (application_id, environment_id) application_id, environment_id, sequence"
    "  FROM audit.deployed_intervals WHERE valid_from >= " FERRY_AT("$1") " AND valid_from < " FERRY_AT("$2")
    "  AND ($3::text = '' OR application_id = $3::text) AND ($4::text = '' OR environment_id = $4::text)"
    "  ORDER BY application_id, environment_id, valid_from DESC, sequence DESC),"
    " ends (sequence, after) AS ("
    "  SELECT m.sequence, true FROM moved m"
    "  UNION ALL"
    "  SELECT b.sequence, false FROM moved m CROSS JOIN LATERAL"
    "   (SELECT d.sequence FROM audit.deployed_intervals d WHERE d.application_id = m.application_id"
    "     AND d.environment_id = m.environment_id AND d.valid_from < " FERRY_AT("$1")
    "     ORDER BY d.valid_from DESC, d.sequence DESC LIMIT 1) b)"
    " SELECT ", kOutcomeColumns, ", ends.after FROM ends JOIN audit.events e ON e.sequence = ends.sequence"
    " ORDER BY e.application_id, e.environment_id");

const std::string kOutcomes = absl::StrCat(
    "SELECT ", kOutcomeColumns,
    " FROM audit.events e WHERE e.action IN " FERRY_OUTCOMES " AND e.event_time >= " FERRY_AT("$1")
    " AND e.event_time < " FERRY_AT("$2") " AND (e.event_time, e.sequence) > (" FERRY_AT("$3") ", $4::bigint)"
    " AND ($5::text = '' OR e.application_id = $5::text) AND ($6::text = '' OR e.environment_id = $6::text)"
    " ORDER BY e.event_time, e.sequence LIMIT $7");

// As kOutcomes, unpaged, plus: the revision's commit time on successes (the
// first REVISION_DETECTED of that repository and sha: its commit_time_unix
// detail when the repository-watcher recorded one, else when it saw the
// commit) and, on failures, the next success of the pair (a forward probe of
// events_succeeded_target_time). The commit time is looked up once per
// (repository, sha) of the window, not once per outcome: a monorepo commit
// is the commit of 10,000 outcomes, and with stale statistics PostgreSQL
// walked every event of that commit for each of them (issue #23: one refresh
// of the DORA gauges took 56 s of PostgreSQL during a 10,000-app commit).
const std::string kDoraOutcomes = absl::StrCat(
    "WITH e AS MATERIALIZED (SELECT * FROM audit.events e WHERE e.action IN " FERRY_OUTCOMES
    " AND e.event_time >= " FERRY_AT("$1") " AND e.event_time < " FERRY_AT("$2")
    " AND ($3::text = '' OR e.application_id = $3::text) AND ($4::text = '' OR e.environment_id = $4::text)),"
    " t AS (SELECT c.repository_id, c.commit_sha,"
    "  (SELECT CASE WHEN jsonb_typeof(r.details->'commit_time_unix') = 'number'"
    "     THEN ((r.details->>'commit_time_unix')::double precision * 1000000)::bigint"
    "     ELSE (extract(epoch FROM r.event_time) * 1000000)::bigint END"
    "   FROM audit.events r WHERE r.commit_sha = c.commit_sha AND r.commit_sha <> ''"
    "   AND r.repository_id = c.repository_id"
    "   AND r.action = 'AUDIT_ACTION_REVISION_DETECTED' ORDER BY r.sequence LIMIT 1) AS commit_time"
    "  FROM (SELECT DISTINCT repository_id, commit_sha FROM e WHERE action = " FERRY_SUCCEEDED
    "   AND commit_sha <> '') c)"
    " SELECT ", kOutcomeColumns,
    ", CASE WHEN e.action = " FERRY_SUCCEEDED " AND e.commit_sha <> '' THEN t.commit_time END,"
    " CASE WHEN e.action <> " FERRY_SUCCEEDED " THEN"
    "  (SELECT (extract(epoch FROM n.event_time) * 1000000)::bigint FROM audit.events n"
    "   WHERE n.action = " FERRY_SUCCEEDED " AND n.application_id = e.application_id"
    "   AND n.environment_id = e.environment_id AND (n.event_time, n.sequence) > (e.event_time, e.sequence)"
    "   ORDER BY n.event_time, n.sequence LIMIT 1) END"
    " FROM e LEFT JOIN t ON t.repository_id = e.repository_id AND t.commit_sha = e.commit_sha"
    " ORDER BY e.event_time, e.sequence");

#undef FERRY_SUCCEEDED
#undef FERRY_OUTCOMES
#undef FERRY_AT

absl::StatusOr<DeploymentOutcome> RowToOutcome(const pqxx::row& row) {
  DeploymentOutcome o;
  v1::DeployedRevision& d = o.deployment;
  d.set_sequence(row[0].as<int64_t>());
  *d.mutable_time() = TimeUtil::MicrosecondsToTimestamp(row[1].as<int64_t>());
  std::string action = row[2].as<std::string>();
  if (!v1::AuditAction_Parse(action, &o.action)) {
    return absl::DataLossError(absl::StrCat("event ", d.sequence(), ": unknown action '", action, "'"));
  }
  d.set_application_id(row[3].as<std::string>());
  d.set_environment_id(row[4].as<std::string>());
  d.set_deployment_id(row[5].as<std::string>());
  d.set_plan_id(row[6].as<std::string>());
  d.set_repository_id(row[7].as<std::string>());
  d.set_ref(row[8].as<std::string>());
  d.set_commit_sha(row[9].as<std::string>());
  d.mutable_actor()->set_id(row[10].as<std::string>());
  v1::ActorKind kind = v1::ACTOR_KIND_UNSPECIFIED;
  std::string kind_name = row[11].as<std::string>();
  if (!kind_name.empty()) v1::ActorKind_Parse(kind_name, &kind);
  d.mutable_actor()->set_kind(kind);
  d.mutable_actor()->set_display_name(row[12].as<std::string>());
  o.message = row[13].as<std::string>();
  d.set_kind(row[14].as<std::string>());
  d.set_previous_sha(row[15].as<std::string>());
  d.set_manifests_digest(row[16].as<std::string>());
  return o;
}

int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }

// A statement's text with its parameters $1..$n replaced by the SQL
// literals in `literals`, in one pass over the template (so nothing inside
// an inserted literal is ever read as a parameter). The templates hold no
// other '$'.
std::string Bind(const std::string& sql, const std::vector<std::string>& literals) {
  std::string out;
  out.reserve(sql.size() + 64);
  for (size_t i = 0; i < sql.size();) {
    if (sql[i] == '$' && i + 1 < sql.size() && absl::ascii_isdigit(sql[i + 1])) {
      size_t j = i + 1;
      int n = 0;
      while (j < sql.size() && absl::ascii_isdigit(sql[j])) n = n * 10 + (sql[j++] - '0');
      out += literals.at(n - 1);
      i = j;
    } else {
      out += sql[i++];
    }
  }
  return out;
}

// Runs one history read in a single round trip to PostgreSQL: its settings
// and the statement (parameters bound as literals by Bind: int64 as digits,
// text through the connection's quoting) as one multi-statement query, which
// PostgreSQL runs as one implicit transaction (so SET LOCAL ends with it).
// A pooled transaction took four (BEGIN, settings, statement, COMMIT), and on
// a loaded machine each is another wait for both processes to be scheduled.
// The settings:
// * index-driven: JIT would only add its compile time (a whole 100 ms on
//   DORA's estimated cost);
// * no parallel workers: a parallel plan split the events' primary-key
//   lookups of the state at T over two processes and so priced a parallel
//   sequential scan of deployed_intervals (100,000 rows at 1M events, 30-40
//   ms) below the one descent of its GiST index (3-5 ms); on a loaded
//   machine a second process only waits for a core.
// The literals also mean each statement is planned for its actual values,
// so unset filters fold away (what plan_cache_mode = force_custom_plan did
// for the prepared statements before).
using Param = std::variant<int64_t, std::string>;
absl::StatusOr<pqxx::result> Run(postgres::ConnectionPool& pool, const std::string& sql,
                                 const std::vector<Param>& params) {
  pqxx::result rows;
  absl::Status status = pool.WithConnection([&](pqxx::connection& conn) -> absl::Status {
    std::vector<std::string> literals;
    literals.reserve(params.size());
    for (const Param& p : params) {
      literals.push_back(std::holds_alternative<int64_t>(p) ? std::to_string(std::get<int64_t>(p))
                                                            : conn.quote(std::get<std::string>(p)));
    }
    pqxx::nontransaction txn(conn);
    rows = txn.exec(absl::StrCat("SET LOCAL jit = off; SET LOCAL max_parallel_workers_per_gather = 0; ",
                                 Bind(sql, literals)));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return rows;
}

absl::StatusOr<std::vector<DeploymentOutcome>> Read(postgres::ConnectionPool& pool, const std::string& sql,
                                                    bool dora, const std::vector<Param>& params) {
  absl::StatusOr<pqxx::result> rows = Run(pool, sql, params);
  if (!rows.ok()) return rows.status();
  std::vector<DeploymentOutcome> out;
  out.reserve(rows->size());
  for (const pqxx::row& row : *rows) {
    absl::StatusOr<DeploymentOutcome> o = RowToOutcome(row);
    if (!o.ok()) return o.status();
    if (dora) {
      if (!row[kOutcomeColumnCount].is_null()) {
        o->commit_time = absl::FromUnixMicros(row[kOutcomeColumnCount].as<int64_t>());
      }
      if (!row[kOutcomeColumnCount + 1].is_null()) {
        o->next_success_time = absl::FromUnixMicros(row[kOutcomeColumnCount + 1].as<int64_t>());
      }
    }
    out.push_back(std::move(*o));
  }
  return out;
}

}  // namespace

PostgresHistoryStore::PostgresHistoryStore(postgres::ConnectionPool& pool) : pool_(pool) {}

absl::StatusOr<std::vector<DeploymentOutcome>> PostgresHistoryStore::StateAt(absl::Time at,
                                                                             const std::string& application,
                                                                             const std::string& environment) {
  return Read(pool_, kStateAt, false, {Micros(at), application, environment});
}

absl::StatusOr<HistoryStore::Moved> PostgresHistoryStore::MovedBetween(absl::Time start, absl::Time end,
                                                                       const std::string& application,
                                                                       const std::string& environment) {
  absl::StatusOr<pqxx::result> rows = Run(pool_, kMovedBetween, {Micros(start), Micros(end), application, environment});
  if (!rows.ok()) return rows.status();
  Moved out;
  for (const pqxx::row& row : *rows) {
    absl::StatusOr<DeploymentOutcome> o = RowToOutcome(row);
    if (!o.ok()) return o.status();
    (row[kOutcomeColumnCount].as<bool>() ? out.after : out.before).push_back(std::move(*o));
  }
  return out;
}

absl::StatusOr<std::vector<DeploymentOutcome>> PostgresHistoryStore::Outcomes(
    absl::Time start, absl::Time end, const std::string& application, const std::string& environment,
    const ChangeCursor& after, int limit) {
  const absl::Time after_time = std::max(after.time, start);
  return Read(pool_, kOutcomes, false,
              {Micros(start), Micros(end), Micros(after_time), after.sequence, application, environment,
               static_cast<int64_t>(limit)});
}

absl::StatusOr<std::vector<DeploymentOutcome>> PostgresHistoryStore::DoraOutcomes(
    absl::Time start, absl::Time end, const std::string& application, const std::string& environment) {
  return Read(pool_, kDoraOutcomes, true, {Micros(start), Micros(end), application, environment});
}

}  // namespace ferry::audit
