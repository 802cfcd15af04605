#include "services/planner/postgres_planner_store.h"

#include <algorithm>
#include <map>
#include <set>

#include <google/protobuf/util/message_differencer.h>
#include <pqxx/pqxx>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging/logger.h"
#include "common/postgres/pq_status.h"
#include "common/postgres/text_array.h"
#include "common/status/status_macros.h"

namespace ferry::planner {
namespace {

// Every SQL statement of the planner.
constexpr char kGetEnvironment[] = "planner_get_environment";
constexpr char kListEnvironments[] = "planner_list_environments";
constexpr char kInsertEnvironment[] = "planner_insert_environment";
constexpr char kUpdateEnvironment[] = "planner_update_environment";
constexpr char kDeleteEnvironment[] = "planner_delete_environment";
constexpr char kGetApplication[] = "planner_get_application";
constexpr char kLockApplication[] = "planner_lock_application";
constexpr char kLockEnvironment[] = "planner_lock_environment";
constexpr char kListApplications[] = "planner_list_applications";
constexpr char kListApplicationsAfter[] = "planner_list_applications_after";
constexpr char kListApplicationsOf[] = "planner_list_applications_of";
constexpr char kGetApplications[] = "planner_get_applications";
constexpr char kListInputPathsOf[] = "planner_list_input_paths_of";
constexpr char kListTouchedBy[] = "planner_list_touched_by";
constexpr char kFillApplicationPath[] = "planner_fill_application_path";
constexpr char kInsertApplication[] = "planner_insert_application";
constexpr char kUpdateApplication[] = "planner_update_application";
constexpr char kDeleteApplication[] = "planner_delete_application";
constexpr char kClearAppEnvironments[] = "planner_clear_app_envs";
constexpr char kInsertAppEnvironment[] = "planner_insert_app_env";
constexpr char kGetInputPaths[] = "planner_get_input_paths";
constexpr char kSetInputPaths[] = "planner_set_input_paths";
constexpr char kListInputPaths[] = "planner_list_input_paths";
constexpr char kUpsertSource[] = "planner_upsert_source";
constexpr char kListSources[] = "planner_list_sources";
constexpr char kClaimPlanSeq[] = "planner_claim_plan_seq";
constexpr char kInsertPlan[] = "planner_insert_plan";
constexpr char kOpenPlansForUpdate[] = "planner_open_plans_for_update";
constexpr char kLockPlan[] = "planner_lock_plan";
constexpr char kUpdatePlan[] = "planner_update_plan";
constexpr char kReleasePlan[] = "planner_release_plan";
constexpr char kReleaseOrderLock[] = "planner_release_order_lock";
constexpr char kReadyToRelease[] = "planner_ready_to_release";
constexpr char kReleaseBatch[] = "planner_release_batch";
constexpr char kGetPlan[] = "planner_get_plan";
constexpr char kListPlans[] = "planner_list_plans";
constexpr char kListReleased[] = "planner_list_released";
constexpr char kOldestUnfinished[] = "planner_oldest_unfinished";
constexpr char kListUnreleased[] = "planner_list_unreleased";
constexpr char kHasSucceeded[] = "planner_has_succeeded";
constexpr char kHavePlansFor[] = "planner_have_plans_for";
constexpr char kReadPlanVersion[] = "planner_read_plan_version";
constexpr char kUpdatePlanVersion[] = "planner_update_plan_version";
constexpr char kUpdatePlanVersions[] = "planner_update_plan_versions";
constexpr char kGetCache[] = "planner_get_cache";
constexpr char kGetCaches[] = "planner_get_caches";
// Render cache reads in one statement, at most.
constexpr size_t kMaxCacheGetBatch = 32;
constexpr char kPutCache[] = "planner_put_cache";
constexpr char kPutCaches[] = "planner_put_caches";
constexpr char kEvictUnusedCache[] = "planner_evict_unused_cache";
constexpr char kEvictCacheBeyond[] = "planner_evict_cache_beyond";
// Rows deleted per eviction statement (each its own transaction: eviction
// never holds many row locks, nor blocks renders, for long).
constexpr int kEvictBatch = 1000;
constexpr char kGetCursor[] = "planner_get_cursor";
constexpr char kSetCursor[] = "planner_set_cursor";
constexpr char kBeginAttempt[] = "planner_begin_attempt";
constexpr char kEndAttempt[] = "planner_end_attempt";
constexpr char kForgetAttempts[] = "planner_forget_attempts";
constexpr char kNotifyPlans[] = "planner_notify_plans";
constexpr char kLockAppEnv[] = "planner_lock_app_env";
constexpr char kLockAppEnvs[] = "planner_lock_app_envs";
constexpr char kClaimPlanSeqs[] = "planner_claim_plan_seqs";
constexpr char kOpenPlansOfForUpdate[] = "planner_open_plans_of_for_update";
constexpr char kInsertPlans[] = "planner_insert_plans";
constexpr char kOpenPlansOfApp[] = "planner_open_plans_of_app";
constexpr char kInsertApproval[] = "planner_insert_approval";
constexpr char kListApprovals[] = "planner_list_approvals";
constexpr char kGetCommitAuthor[] = "planner_get_commit_author";
constexpr char kPutCommitAuthor[] = "planner_put_commit_author";

template <typename T>
absl::StatusOr<T> ParseRow(const pqxx::field& field, const std::string& what) {
  pqxx::binarystring bytes(field);
  T out;
  if (!out.ParseFromString(bytes.str())) return absl::DataLossError(what + " does not parse");
  return out;
}


std::string StatesArray(const std::vector<v1::PlanState>& states) {
  std::vector<int> ints(states.begin(), states.end());
  return absl::StrCat("{", absl::StrJoin(ints, ","), "}");
}

bool Releasable(const v1::Plan& p) {
  return p.state() == v1::PLAN_STATE_APPROVED && p.hold_reason() == v1::HOLD_REASON_UNSPECIFIED && !p.preview();
}

}  // namespace

PostgresPlannerStore::PostgresPlannerStore(postgres::ConnectionPool* pool, outbox::OutboxStore* outbox)
    : pool_(pool),
      outbox_(outbox),
      release_([this] { return ReleaseReady(); }),
      inserts_(kMaxInsertBatch, [this](std::vector<PlanInsert*>& batch) { return InsertPlansUnreleased(batch); }),
      cache_puts_(kMaxCachePutBatch, [this](std::vector<CachePut*>& batch) { return PutCachedRenders(batch); }),
      cache_gets_(kMaxCacheGetBatch, [this](std::vector<std::string*>& keys) { return GetCachedRenders(keys); }),
      quiet_changes_(kMaxQuietChangeBatch, [this](std::vector<PlanChange*>& batch) {
        if (batch.size() == 1) {
          return std::vector<absl::StatusOr<v1::Plan>>{MutatePlanQuietlyAlone(batch[0]->first, batch[0]->second)};
        }
        std::vector<PlanChange> changes;
        changes.reserve(batch.size());
        for (PlanChange* c : batch) changes.push_back(*c);
        return MutatePlansQuietly(changes);
      }) {
  pool_->Prepare(kGetEnvironment, "SELECT spec FROM planner.environments WHERE id = $1");
  pool_->Prepare(kListEnvironments, "SELECT spec FROM planner.environments ORDER BY id");
  pool_->Prepare(kInsertEnvironment,
                 "INSERT INTO planner.environments (id, spec, declared_by) VALUES ($1, $2, NULLIF($3, ''))");
  pool_->Prepare(kUpdateEnvironment,
                 "UPDATE planner.environments SET spec = $2, declared_by = NULLIF($3, ''), update_time = now() WHERE id = $1");
  pool_->Prepare(kDeleteEnvironment, "DELETE FROM planner.environments WHERE id = $1");
  pool_->Prepare(kGetApplication, "SELECT spec FROM planner.applications WHERE id = $1");
  pool_->Prepare(kLockApplication, "SELECT spec FROM planner.applications WHERE id = $1 FOR UPDATE");
  pool_->Prepare(kLockEnvironment, "SELECT spec FROM planner.environments WHERE id = $1 FOR UPDATE");
  pool_->Prepare(kListApplications, "SELECT spec FROM planner.applications ORDER BY id");
  // On the primary key: one page of ListApplications.
  pool_->Prepare(kListApplicationsAfter, "SELECT spec FROM planner.applications WHERE id > $1 ORDER BY id LIMIT $2");
  // Both on the applications_repo_ref index.
  pool_->Prepare(kListApplicationsOf,
                 "SELECT spec FROM planner.applications WHERE repository_id = $1 AND ref = $2 ORDER BY id");
  pool_->Prepare(kListInputPathsOf,
                 "SELECT id, input_paths FROM planner.applications WHERE repository_id = $1 AND ref = $2");
  // On the GIN indexes of migration 009 (applications_roots,
  // applications_root_ancestors); rows written before it (path NULL) always.
  pool_->Prepare(kListTouchedBy,
                 "SELECT spec, input_paths, path IS NULL FROM planner.applications WHERE repository_id = $1 AND ref = $2 "
                 "AND (path IS NULL OR roots && $3::text[] OR root_ancestors && $4::text[]) ORDER BY id");
  pool_->Prepare(kFillApplicationPath, "UPDATE planner.applications SET path = $2 WHERE id = $1 AND path IS NULL");
  pool_->Prepare(kGetApplications, "SELECT spec FROM planner.applications WHERE id = ANY($1::text[]) ORDER BY id");
  pool_->Prepare(kInsertApplication,
                 "INSERT INTO planner.applications (id, repository_id, ref, spec, declared_by, path) "
                 "VALUES ($1, $2, $3, $4, NULLIF($5, ''), $6)");
  pool_->Prepare(kUpdateApplication,
                 "UPDATE planner.applications SET repository_id = $2, ref = $3, spec = $4, declared_by = NULLIF($5, ''), "
                 "path = $6, update_time = now() WHERE id = $1");
  pool_->Prepare(kDeleteApplication, "DELETE FROM planner.applications WHERE id = $1");
  pool_->Prepare(kClearAppEnvironments, "DELETE FROM planner.application_environments WHERE application_id = $1");
  pool_->Prepare(kInsertAppEnvironment,
                 "INSERT INTO planner.application_environments (application_id, environment_id) VALUES ($1, $2)");
  pool_->Prepare(kGetInputPaths, "SELECT input_paths FROM planner.applications WHERE id = $1");
  pool_->Prepare(kListInputPaths, "SELECT id, input_paths FROM planner.applications");
  pool_->Prepare(kSetInputPaths, "UPDATE planner.applications SET input_paths = $2::text[] WHERE id = $1");
  pool_->Prepare(kUpsertSource,
                 "INSERT INTO planner.declaration_sources (key, repository_id, ref, path, commit) "
                 "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO UPDATE SET commit = EXCLUDED.commit, "
                 "update_time = now()");
  pool_->Prepare(kListSources,
                 "SELECT key, repository_id, ref, path, commit FROM planner.declaration_sources ORDER BY key");
  // Whether the plan to insert exists already (when $5, deduplicating: an
  // automatic plan per application, environment, commit and definitions)
  // and, when not, its sequence number: one round trip (issue #23).
  pool_->Prepare(kClaimPlanSeq,
                 "SELECT c.planned, CASE WHEN c.planned THEN 0 ELSE nextval(pg_get_serial_sequence('planner.plans', "
                 "'seq')) END FROM (SELECT $5::boolean AND EXISTS (SELECT 1 FROM planner.plans WHERE application_id = $1 "
                 "AND environment_id = $2 AND target_sha = $3 AND definition_key = $4) AS planned) c");
  pool_->Prepare(kInsertPlan,
                 "INSERT INTO planner.plans (seq, id, application_id, environment_id, state, trigger, target_sha, "
                 "hold_reason, body, definition_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
                 "RETURNING xmin::text");
  pool_->Prepare(kOpenPlansForUpdate,
                 "SELECT body FROM planner.plans WHERE application_id = $1 AND environment_id = $2 "
                 "AND state IN (1, 2) ORDER BY seq FOR UPDATE");
  pool_->Prepare(kLockPlan, "SELECT body, release_seq IS NOT NULL FROM planner.plans WHERE id = $1 FOR UPDATE");
  pool_->Prepare(kUpdatePlan,
                 "UPDATE planner.plans SET state = $2, hold_reason = $3, deployment_id = $4, body = $5, "
                 "update_time = now() WHERE id = $1");
  // Release sequence numbers must become visible in order: a reader that
  // has seen release_seq n must never later find a smaller one committed.
  // Releasing transactions therefore take this lock before drawing their
  // number and hold it until they commit (one short critical section each).
  pool_->Prepare(kReleaseOrderLock, "SELECT pg_advisory_xact_lock(hashtext('planner.plan_release_seq'))");
  pool_->Prepare(kReleasePlan,
                 "UPDATE planner.plans SET release_seq = nextval('planner.plan_release_seq') "
                 "WHERE id = $1 AND release_seq IS NULL");
  // Plans approved without a hold and not released yet (InsertPlan's batch,
  // or one left by a planner stopped between its insert and its release).
  // Rows another transaction holds are skipped: that transaction's
  // WritePlan releases them itself.
  pool_->Prepare(kReadyToRelease,
                 "SELECT id, body FROM planner.plans WHERE state = 2 AND hold_reason = 0 AND release_seq IS NULL "
                 "ORDER BY seq FOR UPDATE SKIP LOCKED");
  // Release numbers drawn in the order of the ids given (creation order).
  // The array comes through a sub-select (as kUpdatePlanVersions'): plain,
  // it was planned afresh at 1,123 of 2,768 calls in a commit touching
  // 10,000 applications.
  pool_->Prepare(kReleaseBatch,
                 "UPDATE planner.plans p SET release_seq = r.release_seq FROM ("
                 "SELECT u.id, nextval('planner.plan_release_seq') AS release_seq "
                 "FROM unnest((SELECT $1::text[])) WITH ORDINALITY AS u(id, n) ORDER BY u.n) r "
                 "WHERE p.id = r.id AND p.release_seq IS NULL RETURNING p.id, p.xmin::text");
  pool_->Prepare(kGetPlan, "SELECT body FROM planner.plans WHERE id = $1");
  pool_->Prepare(kListPlans,
                 "SELECT seq, body FROM planner.plans WHERE ($1 = '' OR application_id = $1) "
                 "AND ($2 = '' OR environment_id = $2) AND (cardinality($3::int[]) = 0 OR state = ANY($3::int[])) "
                 "AND ($4::bigint = 0 OR seq < $4::bigint) ORDER BY seq DESC LIMIT $5");
  // The bytes before each row (octet_length reads a stored body's size
  // without fetching it) bound the page: a body is sent only while those
  // before it stay under $3. The cursor and the count come through
  // sub-selects, which hide their values from the planner: with thousands
  // of plans released and not finished (a commit touching 10,000
  // applications), a plan made for the cursor's value looked cheaper than
  // the generic one, so PostgreSQL planned this statement afresh at every
  // call (issue #23: 1.8 s of planning in that commit). Hidden, the values
  // make no plan cheaper, and the generic plan is kept. The byte budget too:
  // visible, it still made a plan cheaper now and then (a commit touching
  // 10,000 applications: 6,966 plans for 6,966 calls, 1.6 s).
  pool_->Prepare(kListReleased,
                 "SELECT release_seq, body FROM (SELECT release_seq, body, "
                 "sum(octet_length(body)) OVER (ORDER BY release_seq) - octet_length(body) AS before "
                 "FROM (SELECT release_seq, body FROM planner.plans WHERE release_seq > (SELECT $1::bigint) "
                 "AND state IN (2, 4) ORDER BY release_seq LIMIT (SELECT $2::int)) l) w "
                 "WHERE before < (SELECT $3::bigint) ORDER BY release_seq");
  pool_->Prepare(kOldestUnfinished,
                 "SELECT COALESCE((SELECT min(release_seq) - 1 FROM planner.plans WHERE release_seq IS NOT NULL "
                 "AND state IN (2, 4)), (SELECT COALESCE(max(release_seq), 0) FROM planner.plans))");
  pool_->Prepare(kListUnreleased,
                 "SELECT body FROM planner.plans WHERE state IN (1, 2) AND release_seq IS NULL ORDER BY seq");
  pool_->Prepare(kHasSucceeded,
                 "SELECT EXISTS (SELECT 1 FROM planner.plans WHERE application_id = $1 AND environment_id = $2 "
                 "AND target_sha = $3 AND state = 5)");
  // MutatePlanQuietly: the plan and its row version (xmin, the transaction
  // that wrote it), then kUpdatePlan only while the row is that version.
  pool_->Prepare(kReadPlanVersion, "SELECT body, xmin::text FROM planner.plans WHERE id = $1");
  pool_->Prepare(kUpdatePlanVersion,
                 "UPDATE planner.plans SET state = $2, hold_reason = $3, deployment_id = $4, body = $5, "
                 "update_time = now() WHERE id = $1 AND xmin::text = $6 RETURNING xmin::text");
  // The same for several plans: one array each of ids, states, hold
  // reasons, deployment ids, bodies (base64: text arrays carry no bytes)
  // and versions; the rows written come back.
  //
  // The arrays of this and of the batched insert's statements (kClaimPlanSeqs,
  // kOpenPlansOfForUpdate) come through sub-selects, as kListReleased's
  // cursor does: a plan made for the arrays' lengths always looked cheaper
  // than the generic one, so PostgreSQL planned each afresh at every call
  // (issue #23: 0.3 s each in a commit touching 10,000 applications). The
  // generic plan is the same: the pairs or ids probed one by one through
  // plans_app_env or the id's index.
  pool_->Prepare(kUpdatePlanVersions,
                 "UPDATE planner.plans p SET state = u.state::int, hold_reason = u.hold::int, deployment_id = u.dep, "
                 "body = decode(u.body, 'base64'), update_time = now() FROM unnest((SELECT $1::text[]), "
                 "(SELECT $2::text[]), (SELECT $3::text[]), (SELECT $4::text[]), (SELECT $5::text[]), "
                 "(SELECT $6::text[])) AS u(id, state, hold, dep, body, version) "
                 "WHERE p.id = u.id AND p.xmin::text = u.version RETURNING p.id, p.xmin::text");
  // The positions (1-based) of the keys ($1-$4, one array each) that have a
  // plan: one index probe (plans_commit) each.
  pool_->Prepare(kHavePlansFor,
                 "SELECT k.n FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY "
                 "AS k(app, env, sha, def, n) WHERE EXISTS (SELECT 1 FROM planner.plans p WHERE p.application_id = k.app "
                 "AND p.environment_id = k.env AND p.target_sha = k.sha AND p.definition_key = k.def)");
  // A read marks the entry used (eviction keeps what is used), at most once
  // an hour: a hot entry costs no write per hit.
  pool_->Prepare(kGetCache,
                 "WITH used AS (UPDATE planner.render_cache SET use_time = now() WHERE key = $1 "
                 "AND use_time < now() - interval '1 hour') "
                 "SELECT manifests FROM planner.render_cache WHERE key = $1");
  // kGetCache for the keys of an array: the entries found, with their keys.
  pool_->Prepare(kGetCaches,
                 "WITH used AS (UPDATE planner.render_cache SET use_time = now() WHERE key IN "
                 "(SELECT unnest($1::text[])) AND use_time < now() - interval '1 hour') "
                 "SELECT key, manifests FROM planner.render_cache WHERE key IN (SELECT unnest($1::text[]))");
  pool_->Prepare(kEvictUnusedCache,
                 "DELETE FROM planner.render_cache WHERE key IN (SELECT key FROM planner.render_cache "
                 "WHERE use_time < now() - make_interval(secs => $1::double precision) ORDER BY use_time LIMIT $2)");
  pool_->Prepare(kEvictCacheBeyond,
                 "DELETE FROM planner.render_cache WHERE key IN (SELECT key FROM planner.render_cache "
                 "ORDER BY use_time DESC, key OFFSET $1 LIMIT $2)");
  // Written without waiting for the WAL flush: the next durable commit of
  // this database flushes it with itself (the WAL is written in order); a
  // crash before that may lose it, which only the callers' reasons make
  // harmless (see PutCachedRender, RecordCommitAuthor). In one
  // statement outside a transaction block: set_config(..., true) lasts until
  // the end of the statement's own transaction, as SET LOCAL would in a
  // block, at one round trip instead of four (BEGIN, SET, INSERT, COMMIT).
  pool_->Prepare(kPutCache,
                 "INSERT INTO planner.render_cache (key, manifests) SELECT $1::text, $2::bytea "
                 "FROM (SELECT set_config('synchronous_commit', 'off', true)) AS no_flush_wait "
                 "ON CONFLICT (key) DO NOTHING");
  // kPutCache for several entries (keys $1, base64 of their bytes $2).
  pool_->Prepare(kPutCaches,
                 "INSERT INTO planner.render_cache (key, manifests) SELECT u.k, decode(u.v, 'base64') "
                 "FROM (SELECT set_config('synchronous_commit', 'off', true)) AS no_flush_wait, "
                 "unnest($1::text[], $2::text[]) AS u(k, v) ON CONFLICT (key) DO NOTHING");
  pool_->Prepare(kGetCursor, "SELECT value FROM planner.cursors WHERE name = $1");
  pool_->Prepare(kSetCursor,
                 "INSERT INTO planner.cursors (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = $2");
  // One more attempt at the item; the previous count when it is the same
  // item, a fresh record otherwise. Returns the attempts recorded before.
  pool_->Prepare(kBeginAttempt,
                 "INSERT INTO planner.consumer_attempts AS a (name, item_key, attempts) VALUES ($1, $2, 1) "
                 "ON CONFLICT (name) DO UPDATE SET "
                 "attempts = CASE WHEN a.item_key = $2 THEN a.attempts + 1 ELSE 1 END, "
                 "last_error = CASE WHEN a.item_key = $2 THEN a.last_error ELSE '' END, "
                 "item_key = $2, update_time = now() "
                 "RETURNING attempts - 1, last_error");
  pool_->Prepare(kEndAttempt,
                 "UPDATE planner.consumer_attempts SET "
                 "attempts = CASE WHEN $3::boolean THEN attempts ELSE GREATEST(attempts - 1, 0) END, "
                 "last_error = $4, update_time = now() WHERE name = $1 AND item_key = $2");
  pool_->Prepare(kForgetAttempts, "DELETE FROM planner.consumer_attempts WHERE name = $1");
  pool_->Prepare(kNotifyPlans, absl::StrCat("SELECT pg_notify('", kPlansChannel, "', $1)"));
  pool_->Prepare(kOpenPlansOfApp,
                 "SELECT body FROM planner.plans WHERE application_id = $1 AND state IN (1, 2) ORDER BY seq FOR UPDATE");
  pool_->Prepare(kLockAppEnv, "SELECT pg_advisory_xact_lock(hashtext('planner.plan/' || $1))");
  // A batch of inserts (InsertPlansUnreleased): the locks of its keys
  // ($1, "application/environment" each) in the order of their lock numbers,
  // so that two batches never wait for each other in a circle.
  pool_->Prepare(kLockAppEnvs,
                 "SELECT pg_advisory_xact_lock(l.h) FROM (SELECT DISTINCT hashtext('planner.plan/' || k) AS h "
                 "FROM unnest($1::text[]) AS k ORDER BY h) l");
  // kClaimPlanSeq for each of a batch (arrays of applications, environments,
  // commits, definition keys and 't'/'f' dedupe flags): its position
  // (1-based), whether it is planned already and, when not, its sequence
  // number, drawn in the batch's order.
  pool_->Prepare(kClaimPlanSeqs,
                 "SELECT c.n, c.planned, CASE WHEN c.planned THEN 0 ELSE nextval(pg_get_serial_sequence("
                 "'planner.plans', 'seq')) END FROM (SELECT u.n, u.dedupe = 't' AND EXISTS (SELECT 1 FROM planner.plans p "
                 "WHERE p.application_id = u.app AND p.environment_id = u.env AND p.target_sha = u.sha "
                 "AND p.definition_key = u.def) AS planned FROM unnest((SELECT $1::text[]), (SELECT $2::text[]), "
                 "(SELECT $3::text[]), (SELECT $4::text[]), (SELECT $5::text[])) WITH ORDINALITY "
                 "AS u(app, env, sha, def, dedupe, n) ORDER BY u.n) c");
  // kOpenPlansForUpdate for several (application, environment)s (arrays of
  // each): the position of the pair each plan is of, and the plan.
  pool_->Prepare(kOpenPlansOfForUpdate,
                 "SELECT u.n, p.body FROM unnest((SELECT $1::text[]), (SELECT $2::text[])) WITH ORDINALITY "
                 "AS u(app, env, n) "
                 "JOIN planner.plans p ON p.application_id = u.app AND p.environment_id = u.env "
                 "WHERE p.state IN (1, 2) ORDER BY p.seq FOR UPDATE OF p");
  // kInsertPlan for several plans, one text array per column (bodies in
  // base64: text arrays carry no bytes); the ids and row versions written.
  pool_->Prepare(kInsertPlans,
                 "INSERT INTO planner.plans (seq, id, application_id, environment_id, state, trigger, target_sha, "
                 "hold_reason, body, definition_key) SELECT u.seq::bigint, u.id, u.app, u.env, u.state::int, "
                 "u.trig::int, u.sha, u.hold::int, decode(u.body, 'base64'), u.def FROM unnest($1::text[], $2::text[], "
                 "$3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[]) "
                 "AS u(seq, id, app, env, state, trig, sha, hold, body, def) RETURNING id, xmin::text");
  pool_->Prepare(kInsertApproval,
                 "INSERT INTO planner.plan_approvals (plan_id, approver, decision) VALUES ($1, $2, $3) "
                 "ON CONFLICT (plan_id, approver) DO NOTHING");
  pool_->Prepare(kListApprovals, "SELECT decision FROM planner.plan_approvals WHERE plan_id = $1 ORDER BY seq");
  pool_->Prepare(kGetCommitAuthor,
                 "SELECT name, email FROM planner.commit_authors WHERE repository_id = $1 AND sha = $2");
  pool_->Prepare(kPutCommitAuthor,
                 "INSERT INTO planner.commit_authors (repository_id, sha, name, email) "
                 "SELECT $1::text, $2::text, $3::text, $4::text "
                 "FROM (SELECT set_config('synchronous_commit', 'off', true)) AS no_flush_wait "
                 "ON CONFLICT (repository_id, sha) DO NOTHING");
}

absl::Status PostgresPlannerStore::EnqueueAll(pqxx::work& txn, const std::vector<v1::Event>& events) {
  return outbox_->EnqueueAll(txn, events);
}

absl::StatusOr<v1::Environment> PostgresPlannerStore::GetEnvironment(const std::string& id) {
  return pool_->RunStatementWithResult<v1::Environment>([&](pqxx::transaction_base& txn) -> absl::StatusOr<v1::Environment> {
    pqxx::result r = txn.exec_prepared(kGetEnvironment, id);
    if (r.empty()) return absl::NotFoundError(absl::StrCat("environment \"", id, "\" not found"));
    return ParseRow<v1::Environment>(r[0][0], "environment " + id);
  });
}

absl::StatusOr<std::vector<v1::Environment>> PostgresPlannerStore::ListEnvironments() {
  return pool_->RunStatementWithResult<std::vector<v1::Environment>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::vector<v1::Environment>> {
        std::vector<v1::Environment> out;
        for (const auto& row : txn.exec_prepared(kListEnvironments)) {
          ASSIGN_OR_RETURN(v1::Environment e, ParseRow<v1::Environment>(row[0], "environment"));
          out.push_back(std::move(e));
        }
        return out;
      });
}

absl::StatusOr<v1::Application> PostgresPlannerStore::GetApplication(const std::string& id) {
  return pool_->RunStatementWithResult<v1::Application>([&](pqxx::transaction_base& txn) -> absl::StatusOr<v1::Application> {
    pqxx::result r = txn.exec_prepared(kGetApplication, id);
    if (r.empty()) return absl::NotFoundError(absl::StrCat("application \"", id, "\" not found"));
    return ParseRow<v1::Application>(r[0][0], "application " + id);
  });
}

absl::StatusOr<std::vector<v1::Application>> PostgresPlannerStore::ListApplications() {
  return pool_->RunStatementWithResult<std::vector<v1::Application>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::vector<v1::Application>> {
        std::vector<v1::Application> out;
        for (const auto& row : txn.exec_prepared(kListApplications)) {
          ASSIGN_OR_RETURN(v1::Application a, ParseRow<v1::Application>(row[0], "application"));
          out.push_back(std::move(a));
        }
        return out;
      });
}

absl::StatusOr<std::vector<v1::Application>> PostgresPlannerStore::ListApplicationsAfter(const std::string& after_id,
                                                                                          int limit) {
  return pool_->RunStatementWithResult<std::vector<v1::Application>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::vector<v1::Application>> {
        std::vector<v1::Application> out;
        for (const auto& row : txn.exec_prepared(kListApplicationsAfter, after_id, limit)) {
          ASSIGN_OR_RETURN(v1::Application a, ParseRow<v1::Application>(row[0], "application"));
          out.push_back(std::move(a));
        }
        return out;
      });
}

absl::StatusOr<std::vector<v1::Application>> PostgresPlannerStore::ListApplicationsOf(const std::string& repository_id,
                                                                                       const std::string& ref) {
  return pool_->RunStatementWithResult<std::vector<v1::Application>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::vector<v1::Application>> {
        std::vector<v1::Application> out;
        for (const auto& row : txn.exec_prepared(kListApplicationsOf, repository_id, ref)) {
          ASSIGN_OR_RETURN(v1::Application a, ParseRow<v1::Application>(row[0], "application"));
          out.push_back(std::move(a));
        }
        return out;
      });
}

absl::StatusOr<std::vector<v1::Application>> PostgresPlannerStore::GetApplications(const std::set<std::string>& ids) {
  if (ids.empty()) return std::vector<v1::Application>();
  const std::string array = postgres::TextArray(std::vector<std::string>(ids.begin(), ids.end()));
  return pool_->RunStatementWithResult<std::vector<v1::Application>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::vector<v1::Application>> {
        std::vector<v1::Application> out;
        for (const auto& row : txn.exec_prepared(kGetApplications, array)) {
          ASSIGN_OR_RETURN(v1::Application a, ParseRow<v1::Application>(row[0], "application"));
          out.push_back(std::move(a));
        }
        return out;
      });
}

namespace {
// "" (stored as NULL) when the resource was made through the API.
std::string DeclaredKey(const v1::DeclarationSource& s, bool has) {
  if (!has) return "";
  return absl::StrCat(s.repository_id(), ":", s.ref(), ":", s.path());
}
}  // namespace

absl::Status PostgresPlannerStore::ApplyConfigChange(const ConfigChange& change) {
  return pool_->RunInTransaction([&](pqxx::work& txn) -> absl::Status {
    try {
      // Merged updates apply only to the spec they were merged into.
      auto unchanged = [&](const char* lock, const char* kind, const std::string& id,
                           const google::protobuf::Message& expected) -> absl::Status {
        pqxx::result r = txn.exec_prepared(lock, id);
        if (r.empty()) return absl::NotFoundError(absl::StrCat(kind, " \"", id, "\" not found"));
        std::unique_ptr<google::protobuf::Message> stored(expected.New());
        if (!stored->ParseFromString(pqxx::binarystring(r[0][0]).str())) {
          return absl::DataLossError(absl::StrCat("stored ", kind, " \"", id, "\" does not parse"));
        }
        if (!google::protobuf::util::MessageDifferencer::Equals(*stored, expected)) {
          return absl::AbortedError(absl::StrCat(kind, " \"", id, "\" was changed meanwhile"));
        }
        return absl::OkStatus();
      };
      for (const auto& [id, expected] : change.expected_environments) {
        absl::Status s = unchanged(kLockEnvironment, "environment", id, expected);
        if (!s.ok()) return s;
      }
      for (const auto& [id, expected] : change.expected_applications) {
        absl::Status s = unchanged(kLockApplication, "application", id, expected);
        if (!s.ok()) return s;
      }
      for (const auto& e : change.create_environments)
        txn.exec_prepared0(kInsertEnvironment, e.id(), pqxx::binarystring(e.SerializeAsString()),
                           DeclaredKey(e.declared_by(), e.has_declared_by()));
      for (const auto& e : change.update_environments) {
        pqxx::result r = txn.exec_prepared(kUpdateEnvironment, e.id(), pqxx::binarystring(e.SerializeAsString()),
                                           DeclaredKey(e.declared_by(), e.has_declared_by()));
        if (r.affected_rows() == 0) return absl::NotFoundError(absl::StrCat("environment \"", e.id(), "\" not found"));
      }
      auto write_envs = [&](const v1::Application& a) {
        txn.exec_prepared0(kClearAppEnvironments, a.id());
        for (const auto& env : a.environment_ids()) txn.exec_prepared0(kInsertAppEnvironment, a.id(), env);
      };
      for (const auto& a : change.create_applications) {
        txn.exec_prepared0(kInsertApplication, a.id(), a.repository_id(), a.ref(),
                           pqxx::binarystring(a.SerializeAsString()), DeclaredKey(a.declared_by(), a.has_declared_by()),
                           a.path());
        write_envs(a);
      }
      for (const auto& a : change.update_applications) {
        pqxx::result r = txn.exec_prepared(kUpdateApplication, a.id(), a.repository_id(), a.ref(),
                                           pqxx::binarystring(a.SerializeAsString()),
                                           DeclaredKey(a.declared_by(), a.has_declared_by()), a.path());
        if (r.affected_rows() == 0) return absl::NotFoundError(absl::StrCat("application \"", a.id(), "\" not found"));
        write_envs(a);
      }
      std::vector<v1::Event> closing_events;
      for (const auto& id : change.delete_applications) {
        pqxx::result r = txn.exec_prepared(kDeleteApplication, id);
        if (r.affected_rows() == 0) return absl::NotFoundError(absl::StrCat("application \"", id, "\" not found"));
        if (!change.close_open_plan) continue;
        for (const auto& row : txn.exec_prepared(kOpenPlansOfApp, id)) {
          ASSIGN_OR_RETURN(v1::Plan plan, ParseRow<v1::Plan>(row[0], "plan"));
          for (auto& e : change.close_open_plan(plan)) closing_events.push_back(std::move(e));
          RETURN_IF_ERROR(WritePlan(txn, plan));
        }
      }
      RETURN_IF_ERROR(EnqueueAll(txn, closing_events));
      for (const auto& id : change.delete_environments) {
        pqxx::result r = txn.exec_prepared(kDeleteEnvironment, id);
        if (r.affected_rows() == 0) return absl::NotFoundError(absl::StrCat("environment \"", id, "\" not found"));
      }
      if (change.source) {
        const auto& s = change.source->source;
        txn.exec_prepared0(kUpsertSource, change.source->key, s.repository_id(), s.ref(), s.path(), s.commit());
      }
    } catch (const pqxx::foreign_key_violation& e) {
      return absl::FailedPreconditionError(
          "environment is still used by an application (remove it from the applications' environments first)");
    } catch (const std::exception& e) {
      absl::Status status = postgres::StatusFromException(e, "apply configuration change");
      // A conflict PostgreSQL raised (serialization failure, deadlock) goes
      // back to the pool, which retries only the conflicts it sees thrown.
      if (absl::IsAborted(status)) throw;
      return status;
    }
    return EnqueueAll(txn, change.events);
  });
}

absl::StatusOr<std::vector<std::string>> PostgresPlannerStore::GetInputPaths(const std::string& application_id) {
  return pool_->RunStatementWithResult<std::vector<std::string>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::vector<std::string>> {
        pqxx::result r = txn.exec_prepared(kGetInputPaths, application_id);
        if (r.empty()) return absl::NotFoundError(absl::StrCat("application \"", application_id, "\" not found"));
        return postgres::ParseTextArray(r[0][0]);
      });
}


absl::StatusOr<std::map<std::string, std::vector<std::string>>> PostgresPlannerStore::ListInputPaths() {
  return pool_->RunStatementWithResult<std::map<std::string, std::vector<std::string>>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::map<std::string, std::vector<std::string>>> {
        std::map<std::string, std::vector<std::string>> out;
        for (const auto& row : txn.exec_prepared(kListInputPaths)) out[row[0].as<std::string>()] = postgres::ParseTextArray(row[1]);
        return out;
      });
}

absl::StatusOr<std::vector<CatalogStore::ApplicationRoots>> PostgresPlannerStore::ListApplicationsTouchedBy(
    const std::string& repository_id, const std::string& ref, const std::vector<std::string>& changed_paths) {
  // A root r is touched by a changed path p when p lies under r (r is "",
  // p, or a folder above p: one of p's prefixes) or r lies under p (p is ""
  // or a folder above r: one of r's root_ancestors).
  std::set<std::string> prefixes = {""};
  for (const std::string& p : changed_paths) {
    prefixes.insert(p);
    for (size_t i = p.find('/'); i != std::string::npos; i = p.find('/', i + 1)) prefixes.insert(p.substr(0, i));
  }
  const std::string prefix_array = postgres::TextArray(std::vector<std::string>(prefixes.begin(), prefixes.end()));
  const std::string changed_array = postgres::TextArray(changed_paths);
  return pool_->RunInTransactionWithResult<std::vector<ApplicationRoots>>(
      [&](pqxx::work& txn) -> absl::StatusOr<std::vector<ApplicationRoots>> {
        std::vector<ApplicationRoots> out;
        for (const auto& row : txn.exec_prepared(kListTouchedBy, repository_id, ref, prefix_array, changed_array)) {
          ASSIGN_OR_RETURN(v1::Application a, ParseRow<v1::Application>(row[0], "application"));
          // Written before migration 009: its path filled in now, so that
          // the next revision finds it through the index.
          if (row[2].as<bool>()) txn.exec_prepared0(kFillApplicationPath, a.id(), a.path());
          out.push_back({std::move(a), postgres::ParseTextArray(row[1])});
        }
        return out;
      });
}

absl::StatusOr<std::map<std::string, std::vector<std::string>>> PostgresPlannerStore::ListInputPathsOf(
    const std::string& repository_id, const std::string& ref) {
  return pool_->RunStatementWithResult<std::map<std::string, std::vector<std::string>>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::map<std::string, std::vector<std::string>>> {
        std::map<std::string, std::vector<std::string>> out;
        for (const auto& row : txn.exec_prepared(kListInputPathsOf, repository_id, ref)) {
          out[row[0].as<std::string>()] = postgres::ParseTextArray(row[1]);
        }
        return out;
      });
}

absl::Status PostgresPlannerStore::SetInputPaths(const std::string& application_id, const std::vector<std::string>& paths) {
  return pool_->RunStatement([&](pqxx::transaction_base& txn) {
    txn.exec_prepared0(kSetInputPaths, application_id, postgres::TextArray(paths));
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<DeclarationSourceRecord>> PostgresPlannerStore::ListDeclarationSources() {
  return pool_->RunStatementWithResult<std::vector<DeclarationSourceRecord>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::vector<DeclarationSourceRecord>> {
        std::vector<DeclarationSourceRecord> out;
        for (const auto& row : txn.exec_prepared(kListSources)) {
          DeclarationSourceRecord rec;
          rec.key = row[0].as<std::string>();
          rec.source.set_repository_id(row[1].as<std::string>());
          rec.source.set_ref(row[2].as<std::string>());
          rec.source.set_path(row[3].as<std::string>());
          rec.source.set_commit(row[4].as<std::string>());
          out.push_back(std::move(rec));
        }
        return out;
      });
}

absl::Status PostgresPlannerStore::RecordEvents(const std::vector<v1::Event>& events) {
  return pool_->RunInTransaction([&](pqxx::work& txn) { return EnqueueAll(txn, events); });
}

absl::Status PostgresPlannerStore::WritePlan(pqxx::work& txn, const v1::Plan& plan) {
  txn.exec_prepared0(kUpdatePlan, plan.id(), static_cast<int>(plan.state()), static_cast<int>(plan.hold_reason()),
                     plan.deployment_id(), pqxx::binarystring(plan.SerializeAsString()));
  if (Releasable(plan)) {
    txn.exec_prepared(kReleaseOrderLock);
    txn.exec_prepared0(kReleasePlan, plan.id());
    txn.exec_prepared(kNotifyPlans, plan.id());
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Plan> PostgresPlannerStore::InsertPlan(v1::Plan plan, const std::string& definition_key, bool dedupe,
                                                          bool supersede_open, const PlanEventsFn& events,
                                                          const SupersededEventFn& superseded_event) {
  // The plan and its events commit first, without the release-order lock;
  // its release is a second, shared transaction (ReleaseReady through
  // release_): holding that lock until each plan's own commit made every
  // plan's commit wait for the one before it (issue #23: 1,000 plans of one
  // commit spent 21 s waiting on it).
  // Concurrent inserts share one transaction (inserts_), save a plan too
  // large to travel in a batch.
  PlanInsert insert{std::move(plan), &definition_key, dedupe, supersede_open, &events, &superseded_event};
  std::string key = insert.plan.application_id() + "/" + insert.plan.environment_id();
  absl::StatusOr<v1::Plan> inserted = insert.plan.ByteSizeLong() > kMaxBatchedPlanBytes
                                          ? InsertPlanUnreleased(insert)
                                          : inserts_.Run(std::move(insert), std::move(key));
  if (!inserted.ok() || !Releasable(*inserted) || !release_after_insert_) return inserted;
  absl::Status released = release_.Run();
  if (!released.ok()) {
    // Stored, approved and not yet released: the hold pass releases it
    // (HoldEvaluator::ReevaluateHolds, every --hold-check-interval).
    logging::Warn("plan stored but not released yet; the next hold pass releases it",
                  {{"plan", inserted->id()}, {"error", released.ToString()}});
  }
  return inserted;
}

absl::Status PostgresPlannerStore::ReleaseReady() {
  std::map<std::string, v1::Plan> ready;
  std::vector<std::pair<std::string, std::string>> released;  // (id, version)
  absl::Status s = pool_->RunInTransaction([&](pqxx::work& txn) -> absl::Status {
    ready.clear();
    released.clear();
    std::vector<std::string> ids;
    for (const auto& row : txn.exec_prepared(kReadyToRelease)) {
      absl::StatusOr<v1::Plan> p = ParseRow<v1::Plan>(row[1], "plan");
      if (!p.ok() || !Releasable(*p)) continue;
      ids.push_back(row[0].as<std::string>());
      // Only what the cache keeps: a large plan is not held past this.
      if (versions_.Keeps(p->ByteSizeLong())) ready[ids.back()] = *std::move(p);
    }
    if (ids.empty()) return absl::OkStatus();
    // Last, to hold the release-order lock only until the commit.
    txn.exec_prepared(kReleaseOrderLock);
    for (const auto& row : txn.exec_prepared(kReleaseBatch, postgres::TextArray(ids)))
      released.emplace_back(row[0].as<std::string>(), row[1].as<std::string>());
    txn.exec_prepared(kNotifyPlans, ids.front());
    return absl::OkStatus();
  });
  // Committed. Each body was read under the row's lock and the release
  // changed only its release number: that body is the released version's.
  if (s.ok())
    for (auto& [id, version] : released) {
      if (auto it = ready.find(id); it != ready.end()) versions_.Put(std::move(it->second), std::move(version));
    }
  return s;
}

absl::Status PostgresPlannerStore::Supersede(pqxx::work& txn, const pqxx::field& old_body, const v1::Plan& by,
                                             const SupersededEventFn& superseded_event, std::vector<v1::Event>& events) {
  ASSIGN_OR_RETURN(v1::Plan old, ParseRow<v1::Plan>(old_body, "plan"));
  old.set_state(v1::PLAN_STATE_SUPERSEDED);
  old.set_hold_reason(v1::HOLD_REASON_UNSPECIFIED);
  old.set_hold_message("");
  old.set_superseded_by_plan_id(by.id());
  *old.mutable_update_time() = by.create_time();
  RETURN_IF_ERROR(WritePlan(txn, old));
  versions_.Erase(old.id());
  if (superseded_event) events.push_back(superseded_event(old, by));
  return absl::OkStatus();
}

absl::StatusOr<v1::Plan> PostgresPlannerStore::InsertPlanUnreleased(const PlanInsert& insert) {
  const v1::Plan& plan = insert.plan;
  const std::string& definition_key = *insert.definition_key;
  const bool dedupe = insert.dedupe;
  const bool supersede_open = insert.supersede_open;
  const PlanEventsFn& events = *insert.events;
  const SupersededEventFn& superseded_event = *insert.superseded_event;
  std::string version;
  absl::StatusOr<v1::Plan> inserted = pool_->RunInTransactionWithResult<v1::Plan>([&](pqxx::work& txn) -> absl::StatusOr<v1::Plan> {
    txn.exec_prepared(kLockAppEnv, plan.application_id() + "/" + plan.environment_id());
    pqxx::row claimed = txn.exec_prepared1(kClaimPlanSeq, plan.application_id(), plan.environment_id(),
                                           plan.target_revision().sha(), definition_key, dedupe);
    if (claimed[0].as<bool>()) {
      return absl::AlreadyExistsError(absl::StrCat("a plan for ", plan.application_id(), " in ", plan.environment_id(),
                                                   " at ", plan.target_revision().sha(), " exists"));
    }
    v1::Plan stored = plan;
    int64_t seq = claimed[1].as<int64_t>();
    stored.set_id(absl::StrCat("plan-", seq));
    std::vector<v1::Event> out_events;
    if (supersede_open) {
      for (const auto& row : txn.exec_prepared(kOpenPlansForUpdate, stored.application_id(), stored.environment_id())) {
        RETURN_IF_ERROR(Supersede(txn, row[0], stored, superseded_event, out_events));
      }
    }
    version = txn.exec_prepared1(kInsertPlan, seq, stored.id(), stored.application_id(), stored.environment_id(),
                                 static_cast<int>(stored.state()), static_cast<int>(stored.trigger()),
                                 stored.target_revision().sha(), static_cast<int>(stored.hold_reason()),
                                 pqxx::binarystring(stored.SerializeAsString()), definition_key)[0]
                  .as<std::string>();
    for (const v1::PlanDecision& approval : stored.approvals()) InsertApproval(txn, stored.id(), approval);
    if (events)
      for (auto& e : events(stored)) out_events.push_back(std::move(e));
    RETURN_IF_ERROR(EnqueueAll(txn, out_events));
    return stored;
  });
  // Committed, its row written once by that transaction.
  if (inserted.ok()) versions_.Put(*inserted, std::move(version));
  return inserted;
}

std::vector<absl::StatusOr<v1::Plan>> PostgresPlannerStore::InsertPlansUnreleased(std::vector<PlanInsert*>& batch) {
  std::vector<absl::StatusOr<v1::Plan>> out;
  out.reserve(batch.size());
  if (batch.size() == 1) {
    out.push_back(InsertPlanUnreleased(*batch.front()));
    return out;
  }
  // Each plan as InsertPlanUnreleased makes it, a statement for all of them
  // where that makes one for each: the locks, the claims, the open plans,
  // the inserts and the events. What differs per plan (a plan claimed
  // already, a superseded plan, an approval) is answered per plan.
  std::vector<std::optional<v1::Plan>> stored(batch.size());  // nullopt: planned already
  std::vector<int64_t> seq(batch.size());
  std::vector<std::string> versions(batch.size());
  absl::Status s = pool_->RunInTransaction([&](pqxx::work& txn) -> absl::Status {
    std::vector<std::string> keys, apps, envs, shas, defs, dedupes;
    for (const PlanInsert* in : batch) {
      const v1::Plan& p = in->plan;
      keys.push_back(p.application_id() + "/" + p.environment_id());
      apps.push_back(p.application_id());
      envs.push_back(p.environment_id());
      shas.push_back(p.target_revision().sha());
      defs.push_back(*in->definition_key);
      dedupes.push_back(in->dedupe ? "t" : "f");
    }
    txn.exec_prepared(kLockAppEnvs, postgres::TextArray(keys));
    std::fill(stored.begin(), stored.end(), std::nullopt);
    for (const auto& row : txn.exec_prepared(kClaimPlanSeqs, postgres::TextArray(apps), postgres::TextArray(envs),
                                             postgres::TextArray(shas), postgres::TextArray(defs),
                                             postgres::TextArray(dedupes))) {
      size_t i = row[0].as<size_t>() - 1;
      if (i >= batch.size()) return absl::InternalError("a plan claim answered for no plan of the batch");
      if (row[1].as<bool>()) continue;
      seq[i] = row[2].as<int64_t>();
      stored[i] = batch[i]->plan;
      stored[i]->set_id(absl::StrCat("plan-", seq[i]));
    }
    // Older open plans of those that supersede them, oldest first.
    std::vector<size_t> superseding;
    std::vector<std::string> super_apps, super_envs;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!stored[i] || !batch[i]->supersede_open) continue;
      superseding.push_back(i);
      super_apps.push_back(apps[i]);
      super_envs.push_back(envs[i]);
    }
    std::vector<std::vector<v1::Event>> superseded_events(batch.size());
    if (!superseding.empty()) {
      for (const auto& row : txn.exec_prepared(kOpenPlansOfForUpdate, postgres::TextArray(super_apps),
                                               postgres::TextArray(super_envs))) {
        size_t n = row[0].as<size_t>() - 1;
        if (n >= superseding.size()) return absl::InternalError("an open plan read for no plan of the batch");
        size_t i = superseding[n];
        RETURN_IF_ERROR(Supersede(txn, row[1], *stored[i], *batch[i]->superseded_event, superseded_events[i]));
      }
    }
    std::vector<std::string> seqs, ids, ins_apps, ins_envs, states, triggers, ins_shas, holds, bodies, ins_defs;
    std::vector<v1::Event> events;
    std::map<std::string, size_t> index;  // plan id -> position in the batch
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!stored[i]) continue;
      const v1::Plan& p = *stored[i];
      index[p.id()] = i;
      seqs.push_back(absl::StrCat(seq[i]));
      ids.push_back(p.id());
      ins_apps.push_back(apps[i]);
      ins_envs.push_back(envs[i]);
      states.push_back(absl::StrCat(static_cast<int>(p.state())));
      triggers.push_back(absl::StrCat(static_cast<int>(p.trigger())));
      ins_shas.push_back(shas[i]);
      holds.push_back(absl::StrCat(static_cast<int>(p.hold_reason())));
      bodies.push_back(absl::Base64Escape(p.SerializeAsString()));
      ins_defs.push_back(defs[i]);
      // Events in the order each alone enqueues them: its superseded plans',
      // then its own.
      for (v1::Event& e : superseded_events[i]) events.push_back(std::move(e));
      if (*batch[i]->events)
        for (v1::Event& e : (*batch[i]->events)(p)) events.push_back(std::move(e));
    }
    if (ids.empty()) return absl::OkStatus();
    size_t written = 0;
    for (const auto& row : txn.exec_prepared(
             kInsertPlans, postgres::TextArray(seqs), postgres::TextArray(ids), postgres::TextArray(ins_apps),
             postgres::TextArray(ins_envs), postgres::TextArray(states), postgres::TextArray(triggers),
             postgres::TextArray(ins_shas), postgres::TextArray(holds), postgres::TextArray(bodies),
             postgres::TextArray(ins_defs))) {
      auto it = index.find(row[0].as<std::string>());
      if (it == index.end()) return absl::InternalError("a plan inserted that the batch did not hold");
      versions[it->second] = row[1].as<std::string>();
      ++written;
    }
    if (written != ids.size()) return absl::InternalError("not every plan of the batch was inserted");
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!stored[i]) continue;
      for (const v1::PlanDecision& approval : stored[i]->approvals()) InsertApproval(txn, stored[i]->id(), approval);
    }
    return EnqueueAll(txn, events);
  });
  if (!s.ok()) {
    // Each alone, with its own answer (the one at fault fails, the others
    // are inserted).
    logging::Warn("a batch of plan inserts failed; inserting each alone",
                  {{"plans", static_cast<int64_t>(batch.size())}, {"error", s.ToString()}});
    for (PlanInsert* in : batch) out.push_back(InsertPlanUnreleased(*in));
    return out;
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    const v1::Plan& p = batch[i]->plan;
    if (!stored[i]) {
      out.push_back(absl::AlreadyExistsError(absl::StrCat("a plan for ", p.application_id(), " in ",
                                                          p.environment_id(), " at ", p.target_revision().sha(),
                                                          " exists")));
      continue;
    }
    // Committed, its row written once by that transaction.
    versions_.Put(*stored[i], versions[i]);
    inserts_batched_.fetch_add(1);
    out.push_back(*std::move(stored[i]));
  }
  return out;
}

absl::StatusOr<v1::Plan> PostgresPlannerStore::MutatePlan(const std::string& id, const MutateFn& mutate) {
  versions_.Erase(id);  // written twice by one transaction when released: not kept
  return pool_->RunInTransactionWithResult<v1::Plan>([&](pqxx::work& txn) -> absl::StatusOr<v1::Plan> {
    pqxx::result r = txn.exec_prepared(kLockPlan, id);
    if (r.empty()) return absl::NotFoundError(absl::StrCat("plan \"", id, "\" not found"));
    ASSIGN_OR_RETURN(v1::Plan plan, ParseRow<v1::Plan>(r[0][0], "plan " + id));
    ASSIGN_OR_RETURN(std::vector<v1::Event> events, mutate(plan));
    RETURN_IF_ERROR(EnqueueAll(txn, events));
    RETURN_IF_ERROR(WritePlan(txn, plan));  // last: it may take the release-order lock
    return plan;
  });
}

absl::StatusOr<v1::Plan> PostgresPlannerStore::MutatePlanQuietly(const std::string& id, const MutateFn& mutate) {
  return quiet_changes_.Run(PlanChange{id, mutate}, id);
}

absl::StatusOr<v1::Plan> PostgresPlannerStore::MutatePlanQuietlyAlone(const std::string& id, const MutateFn& mutate) {
  struct Read {
    v1::Plan plan;
    std::string version;
  };
  auto read_plan = [&](pqxx::transaction_base& txn) -> absl::StatusOr<Read> {
    pqxx::result r = txn.exec_prepared(kReadPlanVersion, id);
    if (r.empty()) return absl::NotFoundError(absl::StrCat("plan \"", id, "\" not found"));
    absl::StatusOr<v1::Plan> parsed = ParseRow<v1::Plan>(r[0][0], "plan " + id);
    if (!parsed.ok()) return parsed.status();
    return Read{*std::move(parsed), r[0][1].as<std::string>()};
  };
  // The version this store wrote last, when it has one: the write below
  // checks it as it checks a version read.
  Read read;
  bool unread = false;
  if (std::optional<PlanVersionCache::Entry> kept = versions_.Get(id)) {
    read = Read{std::move(kept->plan), std::move(kept->version)};
    unread = true;
  } else {
    ASSIGN_OR_RETURN(read, pool_->RunStatementWithResult<Read>(read_plan));
  }
  v1::Plan plan = read.plan;
  absl::StatusOr<std::vector<v1::Event>> events = mutate(plan);
  // Audited, refused (perhaps by a version a transaction is changing right
  // now, or by an outdated guess) or released: under the row lock, in one
  // transaction.
  if (!events.ok() || !events->empty() || Releasable(plan)) return MutatePlan(id, mutate);
  auto write_plan = [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::optional<std::string>> {
    pqxx::result r = txn.exec_prepared(kUpdatePlanVersion, plan.id(), static_cast<int>(plan.state()),
                                       static_cast<int>(plan.hold_reason()), plan.deployment_id(),
                                       pqxx::binarystring(plan.SerializeAsString()), read.version);
    if (r.empty()) return std::optional<std::string>();
    return std::optional<std::string>(r[0][0].as<std::string>());
  };
  ASSIGN_OR_RETURN(std::optional<std::string> written, pool_->RunStatementWithResult<std::optional<std::string>>(write_plan));
  if (!written) return MutatePlan(id, mutate);  // changed since it was read (or written here)
  if (unread) ++quiet_writes_unread_;
  versions_.Put(plan, *std::move(written));
  return plan;
}

std::vector<absl::StatusOr<v1::Plan>> PostgresPlannerStore::MutatePlansQuietly(
    const std::vector<PlanChange>& changes) {
  std::vector<absl::StatusOr<v1::Plan>> out(changes.size(), absl::InternalError("not changed"));
  struct Guess {
    size_t index;
    v1::Plan plan;
    std::string version;
  };
  std::vector<Guess> guesses;
  std::vector<size_t> alone;  // in order
  std::set<std::string> seen;
  for (size_t i = 0; i < changes.size(); ++i) {
    const auto& [id, mutate] = changes[i];
    // A plan's second change waits for its first.
    if (!seen.insert(id).second) {
      alone.push_back(i);
      continue;
    }
    std::optional<PlanVersionCache::Entry> kept = versions_.Get(id);
    if (!kept) {
      alone.push_back(i);
      continue;
    }
    v1::Plan plan = std::move(kept->plan);
    absl::StatusOr<std::vector<v1::Event>> events = mutate(plan);
    if (!events.ok() || !events->empty() || Releasable(plan)) {
      alone.push_back(i);
      continue;
    }
    guesses.push_back(Guess{i, std::move(plan), std::move(kept->version)});
  }
  if (guesses.size() < 2) {
    // One write alone is the statement MutatePlanQuietly makes.
    for (const Guess& g : guesses) alone.push_back(g.index);
    guesses.clear();
    std::sort(alone.begin(), alone.end());
  }
  std::map<std::string, std::string> written;  // id -> version
  if (!guesses.empty()) {
    std::vector<std::string> ids, states, holds, deployments, bodies, versions;
    for (const Guess& g : guesses) {
      ids.push_back(g.plan.id());
      states.push_back(absl::StrCat(static_cast<int>(g.plan.state())));
      holds.push_back(absl::StrCat(static_cast<int>(g.plan.hold_reason())));
      deployments.push_back(g.plan.deployment_id());
      bodies.push_back(absl::Base64Escape(g.plan.SerializeAsString()));
      versions.push_back(g.version);
    }
    absl::Status s = pool_->RunStatement([&](pqxx::transaction_base& txn) -> absl::Status {
      written.clear();
      for (const auto& row : txn.exec_prepared(kUpdatePlanVersions, postgres::TextArray(ids), postgres::TextArray(states),
                                               postgres::TextArray(holds), postgres::TextArray(deployments),
                                               postgres::TextArray(bodies), postgres::TextArray(versions)))
        written[row[0].as<std::string>()] = row[1].as<std::string>();
      return absl::OkStatus();
    });
    if (!s.ok()) {
      written.clear();  // then each alone, which reports its own error
      logging::Warn("a shared statement failed; running each of its calls alone",
                    {{"statement", kUpdatePlanVersions}, {"calls", static_cast<int64_t>(guesses.size())},
                     {"error", s.ToString()}});
    }
    for (Guess& g : guesses) {
      auto it = written.find(g.plan.id());
      if (it == written.end()) {
        versions_.Erase(g.plan.id());  // outdated: read it
        alone.push_back(g.index);
        continue;
      }
      ++quiet_writes_unread_;
      ++quiet_writes_batched_;
      versions_.Put(g.plan, it->second);
      out[g.index] = std::move(g.plan);
    }
    std::sort(alone.begin(), alone.end());
  }
  for (size_t i : alone) out[i] = MutatePlanQuietlyAlone(changes[i].first, changes[i].second);
  return out;
}

bool PostgresPlannerStore::InsertApproval(pqxx::work& txn, const std::string& plan_id,
                                          const v1::PlanDecision& approval) {
  return txn.exec_prepared(kInsertApproval, plan_id, approval.actor().id(),
                           pqxx::binarystring(approval.SerializeAsString()))
             .affected_rows() == 1;
}

absl::StatusOr<v1::Plan> PostgresPlannerStore::RecordApproval(const std::string& id, const v1::PlanDecision& approval,
                                                              const ApprovalFn& decide) {
  versions_.Erase(id);
  return pool_->RunInTransactionWithResult<v1::Plan>([&](pqxx::work& txn) -> absl::StatusOr<v1::Plan> {
    pqxx::result r = txn.exec_prepared(kLockPlan, id);
    if (r.empty()) return absl::NotFoundError(absl::StrCat("plan \"", id, "\" not found"));
    ASSIGN_OR_RETURN(v1::Plan plan, ParseRow<v1::Plan>(r[0][0], "plan " + id));
    const bool added = InsertApproval(txn, id, approval);
    // The table is the record; the plan's body carries a copy for readers.
    plan.clear_approvals();
    for (const auto& row : txn.exec_prepared(kListApprovals, id)) {
      ASSIGN_OR_RETURN(*plan.add_approvals(), ParseRow<v1::PlanDecision>(row[0], "approval of plan " + id));
    }
    ASSIGN_OR_RETURN(std::vector<v1::Event> events, decide(plan, added));
    RETURN_IF_ERROR(EnqueueAll(txn, events));
    RETURN_IF_ERROR(WritePlan(txn, plan));  // last: it may take the release-order lock
    return plan;
  });
}

absl::StatusOr<std::optional<v1::CommitAuthor>> PostgresPlannerStore::GetCommitAuthor(const std::string& repository_id,
                                                                                     const std::string& sha) {
  return pool_->RunStatementWithResult<std::optional<v1::CommitAuthor>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::optional<v1::CommitAuthor>> {
        pqxx::result r = txn.exec_prepared(kGetCommitAuthor, repository_id, sha);
        if (r.empty()) return std::optional<v1::CommitAuthor>();
        v1::CommitAuthor author;
        author.set_name(r[0][0].as<std::string>());
        author.set_email(r[0][1].as<std::string>());
        return std::optional<v1::CommitAuthor>(std::move(author));
      });
}

absl::Status PostgresPlannerStore::RecordCommitAuthor(const std::string& repository_id, const std::string& sha,
                                                      const v1::CommitAuthor& author) {
  return pool_->RunStatement([&](pqxx::transaction_base& txn) {
    // Not flushed before returning (issue #23, push to served; the
    // statement says so itself): the revision's cursor is advanced
    // afterwards in a durable commit, which flushes this one with it (WAL
    // order); a planner stopped before that replays the revision and records
    // the author again.
    txn.exec_prepared0(kPutCommitAuthor, repository_id, sha, author.name(), author.email());
    return absl::OkStatus();
  });
}

absl::StatusOr<v1::Plan> PostgresPlannerStore::GetPlan(const std::string& id) {
  return pool_->RunStatementWithResult<v1::Plan>([&](pqxx::transaction_base& txn) -> absl::StatusOr<v1::Plan> {
    pqxx::result r = txn.exec_prepared(kGetPlan, id);
    if (r.empty()) return absl::NotFoundError(absl::StrCat("plan \"", id, "\" not found"));
    return ParseRow<v1::Plan>(r[0][0], "plan " + id);
  });
}

absl::StatusOr<PlanPage> PostgresPlannerStore::ListPlans(const PlanFilter& filter) {
  return pool_->RunStatementWithResult<PlanPage>([&](pqxx::transaction_base& txn) -> absl::StatusOr<PlanPage> {
    PlanPage page;
    pqxx::result r = txn.exec_prepared(kListPlans, filter.application_id, filter.environment_id,
                                       StatesArray(filter.states), filter.before_seq, filter.limit + 1);
    for (const auto& row : r) {
      if (static_cast<int>(page.plans.size()) == filter.limit) {
        page.more = true;
        break;
      }
      page.last_seq = row[0].as<int64_t>();
      ASSIGN_OR_RETURN(v1::Plan p, ParseRow<v1::Plan>(row[1], "plan"));
      page.plans.push_back(std::move(p));
    }
    return page;
  });
}

absl::StatusOr<std::vector<ReleasedPlan>> PostgresPlannerStore::ListReleased(int64_t after_seq, int limit,
                                                                            int64_t max_bytes) {
  return pool_->RunStatementWithResult<std::vector<ReleasedPlan>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::vector<ReleasedPlan>> {
        std::vector<ReleasedPlan> out;
        for (const auto& row : txn.exec_prepared(kListReleased, after_seq, limit, max_bytes)) {
          ReleasedPlan rp;
          rp.release_seq = row[0].as<int64_t>();
          ASSIGN_OR_RETURN(rp.plan, ParseRow<v1::Plan>(row[1], "plan"));
          out.push_back(std::move(rp));
        }
        return out;
      });
}

absl::StatusOr<int64_t> PostgresPlannerStore::OldestUnfinishedRelease() {
  return pool_->RunStatementWithResult<int64_t>([&](pqxx::transaction_base& txn) -> absl::StatusOr<int64_t> {
    return txn.exec_prepared1(kOldestUnfinished)[0].as<int64_t>();
  });
}

absl::StatusOr<std::vector<v1::Plan>> PostgresPlannerStore::ListUnreleased() {
  return pool_->RunStatementWithResult<std::vector<v1::Plan>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::vector<v1::Plan>> {
        std::vector<v1::Plan> out;
        for (const auto& row : txn.exec_prepared(kListUnreleased)) {
          ASSIGN_OR_RETURN(v1::Plan p, ParseRow<v1::Plan>(row[0], "plan"));
          out.push_back(std::move(p));
        }
        return out;
      });
}

absl::StatusOr<bool> PostgresPlannerStore::HasSucceeded(const std::string& app, const std::string& env,
                                                        const std::string& sha) {
  return pool_->RunStatementWithResult<bool>([&](pqxx::transaction_base& txn) -> absl::StatusOr<bool> {
    return txn.exec_prepared1(kHasSucceeded, app, env, sha)[0].as<bool>();
  });
}

absl::StatusOr<std::vector<bool>> PostgresPlannerStore::HavePlansFor(const std::vector<PlanKey>& keys) {
  std::vector<bool> out(keys.size(), false);
  if (keys.empty()) return out;
  std::vector<std::string> apps, envs, shas, defs;
  for (const PlanKey& k : keys) {
    apps.push_back(k.application_id);
    envs.push_back(k.environment_id);
    shas.push_back(k.sha);
    defs.push_back(k.definition_key);
  }
  auto read = [&](pqxx::transaction_base& txn) -> absl::Status {
    for (const auto& row : txn.exec_prepared(kHavePlansFor, postgres::TextArray(apps), postgres::TextArray(envs),
                                             postgres::TextArray(shas), postgres::TextArray(defs))) {
      const int64_t n = row[0].as<int64_t>();
      if (n >= 1 && n <= static_cast<int64_t>(out.size())) out[n - 1] = true;
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(pool_->RunStatement(read));
  return out;
}

absl::StatusOr<std::optional<std::vector<v1::Manifest>>> PostgresPlannerStore::GetCachedRender(const std::string& key) {
  return cache_gets_.Run(std::string(key), key);
}

PostgresPlannerStore::CachedRender PostgresPlannerStore::GetCachedRenderAlone(const std::string& key) {
  return pool_->RunStatementWithResult<std::optional<std::vector<v1::Manifest>>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::optional<std::vector<v1::Manifest>>> {
        pqxx::result r = txn.exec_prepared(kGetCache, key);
        if (r.empty()) return std::optional<std::vector<v1::Manifest>>();
        ASSIGN_OR_RETURN(v1::Plan holder, ParseRow<v1::Plan>(r[0][0], "render cache entry"));
        return std::optional<std::vector<v1::Manifest>>(
            std::vector<v1::Manifest>(holder.manifests().begin(), holder.manifests().end()));
      });
}

std::vector<PostgresPlannerStore::CachedRender> PostgresPlannerStore::GetCachedRenders(std::vector<std::string*>& keys) {
  std::vector<CachedRender> out;
  if (keys.size() == 1) {
    out.push_back(GetCachedRenderAlone(*keys.front()));
    return out;
  }
  std::vector<std::string> array;
  for (const std::string* k : keys) array.push_back(*k);
  pqxx::result r;
  absl::Status read = pool_->RunStatement([&](pqxx::transaction_base& txn) -> absl::Status {
    r = txn.exec_prepared(kGetCaches, postgres::TextArray(array));
    return absl::OkStatus();
  });
  if (!read.ok()) {
    logging::Warn("a shared statement failed; running each of its calls alone",
                  {{"statement", kGetCaches}, {"calls", static_cast<int64_t>(keys.size())}, {"error", read.ToString()}});
    for (const std::string* k : keys) out.push_back(GetCachedRenderAlone(*k));
    return out;
  }
  cache_gets_batched_.fetch_add(static_cast<int64_t>(keys.size()));
  std::map<std::string, pqxx::row> found;
  for (const pqxx::row& row : r) found.emplace(row[0].as<std::string>(), row);
  for (const std::string* k : keys) {
    auto it = found.find(*k);
    if (it == found.end()) {
      out.push_back(std::optional<std::vector<v1::Manifest>>());
      continue;
    }
    absl::StatusOr<v1::Plan> holder = ParseRow<v1::Plan>(it->second[1], "render cache entry");
    if (!holder.ok()) {
      out.push_back(holder.status());
      continue;
    }
    out.push_back(std::optional<std::vector<v1::Manifest>>(
        std::vector<v1::Manifest>(holder->manifests().begin(), holder->manifests().end())));
  }
  return out;
}

absl::Status PostgresPlannerStore::PutCachedRender(const std::string& key, const std::vector<v1::Manifest>& manifests) {
  v1::Plan holder;
  for (const auto& m : manifests) *holder.add_manifests() = m;
  CachePut put{key, holder.SerializeAsString()};
  if (put.manifests.size() > kMaxBatchedPlanBytes) return PutCachedRenderAlone(put);
  std::string batch_key = put.key;
  return cache_puts_.Run(std::move(put), std::move(batch_key));
}

// A cache entry is not worth a flush wait on the way to a plan (issue #23,
// push to served; the statements say so themselves): the plan's own durable
// commit flushes it too, and one lost in a crash is rendered again.
absl::Status PostgresPlannerStore::PutCachedRenderAlone(const CachePut& put) {
  return pool_->RunStatement([&](pqxx::transaction_base& txn) {
    txn.exec_prepared0(kPutCache, put.key, pqxx::binarystring(put.manifests));
    return absl::OkStatus();
  });
}

std::vector<absl::Status> PostgresPlannerStore::PutCachedRenders(std::vector<CachePut*>& batch) {
  if (batch.size() == 1) return {PutCachedRenderAlone(*batch[0])};
  std::vector<std::string> keys;
  std::vector<std::string> values;
  keys.reserve(batch.size());
  values.reserve(batch.size());
  for (const CachePut* p : batch) {
    keys.push_back(p->key);
    values.push_back(absl::Base64Escape(p->manifests));
  }
  absl::Status s = pool_->RunStatement([&](pqxx::transaction_base& txn) {
    txn.exec_prepared0(kPutCaches, postgres::TextArray(keys), postgres::TextArray(values));
    return absl::OkStatus();
  });
  return std::vector<absl::Status>(batch.size(), s);
}

absl::StatusOr<int64_t> PostgresPlannerStore::EvictCachedRenders(absl::Duration unused_for, int64_t keep_at_most) {
  const double seconds = absl::ToDoubleSeconds(std::max(unused_for, absl::ZeroDuration()));
  int64_t total = 0;
  auto batches = [&](const char* statement, auto arg) -> absl::Status {
    while (true) {
      ASSIGN_OR_RETURN(int64_t gone, pool_->RunStatementWithResult<int64_t>([&](pqxx::transaction_base& txn) -> absl::StatusOr<int64_t> {
        return static_cast<int64_t>(txn.exec_prepared0(statement, arg, kEvictBatch).affected_rows());
      }));
      total += gone;
      if (gone < kEvictBatch) return absl::OkStatus();
    }
  };
  RETURN_IF_ERROR(batches(kEvictUnusedCache, seconds));
  if (keep_at_most > 0) RETURN_IF_ERROR(batches(kEvictCacheBeyond, keep_at_most));
  return total;
}

absl::StatusOr<std::string> PostgresPlannerStore::GetCursor(const std::string& name) {
  return pool_->RunStatementWithResult<std::string>([&](pqxx::transaction_base& txn) -> absl::StatusOr<std::string> {
    pqxx::result r = txn.exec_prepared(kGetCursor, name);
    return r.empty() ? std::string() : r[0][0].as<std::string>();
  });
}

absl::Status PostgresPlannerStore::SetCursor(const std::string& name, const std::string& value) {
  return pool_->RunStatement([&](pqxx::transaction_base& txn) {
    txn.exec_prepared0(kSetCursor, name, value);
    return absl::OkStatus();
  });
}

absl::StatusOr<ItemAttempts> PostgresPlannerStore::BeginAttempt(const std::string& name, const std::string& item_key) {
  return pool_->RunStatementWithResult<ItemAttempts>([&](pqxx::transaction_base& txn) -> absl::StatusOr<ItemAttempts> {
    pqxx::row r = txn.exec_prepared1(kBeginAttempt, name, item_key);
    ItemAttempts out;
    out.unfinished = r[0].as<int>();
    out.last_error = r[1].as<std::string>();
    return out;
  });
}

absl::Status PostgresPlannerStore::EndAttempt(const std::string& name, const std::string& item_key, bool counted,
                                              const std::string& error) {
  return pool_->RunStatement([&](pqxx::transaction_base& txn) {
    txn.exec_prepared0(kEndAttempt, name, item_key, counted, error);
    return absl::OkStatus();
  });
}

absl::Status PostgresPlannerStore::AdvanceCursor(const std::string& name, const std::string& value,
                                                 const std::vector<v1::Event>& events) {
  return pool_->RunInTransaction([&](pqxx::work& txn) {
    txn.exec_prepared0(kSetCursor, name, value);
    txn.exec_prepared0(kForgetAttempts, name);
    return EnqueueAll(txn, events);
  });
}

}  // namespace ferry::planner
