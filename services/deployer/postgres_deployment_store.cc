#include "services/deployer/postgres_deployment_store.h"

#include <pqxx/pqxx>

#include <functional>
#include <map>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging/logger.h"
#include "common/postgres/pq_status.h"
#include "common/postgres/text_array.h"
#include "services/deployer/deployment_state.h"

namespace ferry::deployer {
namespace {

// Every statement of the deployer, by name.
constexpr char kInsertDeployment[] = "deployer_insert_deployment";
constexpr char kUpdateDeployment[] = "deployer_update_deployment";
constexpr char kUpsertManaged[] = "deployer_upsert_managed";
constexpr char kUpsertStep[] = "deployer_upsert_step";
constexpr char kUpsertApplied[] = "deployer_upsert_applied";
constexpr char kDeleteApplied[] = "deployer_delete_applied";
constexpr char kGetDeployment[] = "deployer_get_deployment";
constexpr char kGetSpec[] = "deployer_get_spec";
constexpr char kGetAttempts[] = "deployer_get_attempts";
constexpr char kSaveAttempts[] = "deployer_save_attempts";
constexpr char kGetSteps[] = "deployer_get_steps";
constexpr char kList[] = "deployer_list";
constexpr char kUnfinished[] = "deployer_unfinished";
constexpr char kSucceeded[] = "deployer_succeeded";
constexpr char kUnreported[] = "deployer_unreported";
constexpr char kMarkReported[] = "deployer_mark_reported";
constexpr char kApplied[] = "deployer_applied";
constexpr char kManagedApps[] = "deployer_managed_apps";
constexpr char kManagedApp[] = "deployer_managed_app";
constexpr char kGetPin[] = "deployer_get_pin";
constexpr char kUpsertPin[] = "deployer_upsert_pin";
constexpr char kInsertDrift[] = "deployer_insert_drift";
constexpr char kHealDrift[] = "deployer_heal_drift";
constexpr char kGetDriftSettings[] = "deployer_get_drift_settings";
constexpr char kUpsertDriftSettings[] = "deployer_upsert_drift_settings";
constexpr char kGetCursor[] = "deployer_get_cursor";
constexpr char kUpsertCursor[] = "deployer_upsert_cursor";
constexpr char kCheckFence[] = "deployer_check_fence";
constexpr char kDeploymentFence[] = "deployer_deployment_fence";
constexpr char kDeploymentEnv[] = "deployer_deployment_env";
constexpr char kFencedStep[] = "deployer_fenced_step";
constexpr char kFencedUpdate[] = "deployer_fenced_update";
constexpr char kFencedStepOutcome[] = "deployer_fenced_step_outcome";
constexpr char kFencedUpdateOutcome[] = "deployer_fenced_update_outcome";
constexpr char kFencedUpdatesOutcome[] = "deployer_fenced_updates_outcome";
constexpr char kFencedStepsOutcome[] = "deployer_fenced_steps_outcome";
// Fenced writes of concurrently running deployments in one statement, at most.
constexpr size_t kMaxFencedBatch = 64;
// The outbox table kFencedStepOutcome writes (the deployer's; OutboxStore::Prepare names it).
constexpr char kOutboxTable[] = "deployer.outbox";
// Deployments whose environment a store remembers (EnvironmentOf); past
// this many it forgets them all and learns them again.
constexpr size_t kRememberedEnvironments = 20000;
constexpr char kDriftEnvs[] = "deployer_drift_envs";
constexpr char kDriftCheckInputs[] = "deployer_drift_check_inputs";
constexpr char kDriftCheckInputsOf[] = "deployer_drift_check_inputs_of";
constexpr char kAppState[] = "deployer_app_state";
constexpr char kAppStates[] = "deployer_app_states";
constexpr char kInsertDeployments[] = "deployer_insert_deployments";
// Creates in one statement, at most, and the largest spec one goes with
// others (base64 text in an array); a larger one is inserted alone.
constexpr size_t kMaxCreateBatch = 32;
constexpr size_t kMaxBatchedSpecBytes = size_t{64} << 10;
// ReadAppState calls in one statement, at most.
constexpr size_t kMaxAppStateBatch = 64;
constexpr char kTryLock[] = "SELECT pg_try_advisory_lock(hashtext('ferry.deployer'), hashtext($1))";
constexpr char kUnlockAll[] = "SELECT pg_advisory_unlock_all()";
// Sessions kept open for the next lock: one per deployment that may run at
// once, more are closed when released.
constexpr size_t kIdleLockSessions = 8;

pqxx::binarystring Bytes(const google::protobuf::Message& m) { return pqxx::binarystring(m.SerializeAsString()); }

std::string Base64(const std::string& bytes) { return absl::Base64Escape(bytes); }

template <typename T>
absl::StatusOr<T> Parse(const pqxx::field& f, const char* what) {
  T out;
  pqxx::binarystring b(f);
  if (!out.ParseFromString(b.str())) return absl::DataLossError(absl::StrCat("stored ", what, " does not parse"));
  return out;
}

class PostgresAppLock final : public AppLock {
 public:
  PostgresAppLock(std::unique_ptr<pqxx::connection> conn, std::shared_ptr<LockSessions> sessions)
      : conn_(std::move(conn)), sessions_(std::move(sessions)) {}
  ~PostgresAppLock() override {
    // Unlock with a round trip, so the next holder can lock at once; ending
    // the session would release it too, but asynchronously. A session that
    // unlocked cleanly holds nothing and is kept for the next lock.
    try {
      {
        pqxx::nontransaction tx(*conn_);
        tx.exec(kUnlockAll);
      }
      sessions_->Return(std::move(conn_));
    } catch (const std::exception&) {
      conn_->disconnect();
    }
  }

 private:
  std::unique_ptr<pqxx::connection> conn_;
  std::shared_ptr<LockSessions> sessions_;
};

}  // namespace

std::unique_ptr<pqxx::connection> LockSessions::Take() {
  ferry::MutexLock l(&mu_);
  if (idle_.empty()) return nullptr;
  std::unique_ptr<pqxx::connection> conn = std::move(idle_.back());
  idle_.pop_back();
  return conn;
}

void LockSessions::Return(std::unique_ptr<pqxx::connection> conn) {
  ferry::MutexLock l(&mu_);
  if (conn != nullptr && conn->is_open() && idle_.size() < max_idle_) idle_.push_back(std::move(conn));
}

PostgresDeploymentStore::PostgresDeploymentStore(postgres::ConnectionPool* pool, outbox::OutboxStore* outbox,
                                                 DeploymentStoreScope scope)
    : pool_(pool),
      outbox_(outbox),
      scope_(std::move(scope)),
      lock_sessions_(std::make_shared<LockSessions>(kIdleLockSessions)),
      fenced_updates_(kMaxFencedBatch, [this](std::vector<FencedUpdate*>& batch) { return WriteFencedUpdates(batch); }),
      fenced_steps_(kMaxFencedBatch, [this](std::vector<FencedSteps*>& batch) { return WriteFencedSteps(batch); }),
      creates_(kMaxCreateBatch, [this](std::vector<NewDeployment*>& batch) { return CreateAll(batch); }),
      app_state_reads_(kMaxAppStateBatch,
                       [this](std::vector<AppStateQuery*>& batch) { return ReadAppStates(batch); }) {
  pool_->Prepare(kInsertDeployment,
                 "INSERT INTO deployer.deployments (id, application_id, environment_id, plan_id, state, record, spec)"
                 " VALUES ($1, $2, $3, $4, $5, $6, $7)");
  // kInsertDeployment for several: one array each ($6, $7 base64).
  pool_->Prepare(kInsertDeployments,
                 "INSERT INTO deployer.deployments (id, application_id, environment_id, plan_id, state, record, spec)"
                 " SELECT u.id, u.app, u.env, u.plan, u.state, decode(u.record, 'base64'), decode(u.spec, 'base64')"
                 " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[], $7::text[])"
                 " AS u(id, app, env, plan, state, record, spec)");
  pool_->Prepare(kUpdateDeployment, "UPDATE deployer.deployments SET state = $2, record = $3 WHERE id = $1");
  pool_->Prepare(kUpsertManaged,
                 "INSERT INTO deployer.managed_apps (application_id, environment_id, target, sync_policy,"
                 " live_deployment_id) VALUES ($1, $2, $3, $4, $5)"
                 " ON CONFLICT (application_id, environment_id) DO UPDATE SET target = EXCLUDED.target,"
                 " sync_policy = EXCLUDED.sync_policy, live_deployment_id = CASE WHEN EXCLUDED.live_deployment_id = ''"
                 " THEN deployer.managed_apps.live_deployment_id ELSE EXCLUDED.live_deployment_id END");
  pool_->Prepare(kUpsertStep,
                 "INSERT INTO deployer.steps (deployment_id, sequence, record) VALUES ($1, $2, $3)"
                 " ON CONFLICT (deployment_id, sequence) DO UPDATE SET record = EXCLUDED.record");
  pool_->Prepare(kUpsertApplied,
                 "INSERT INTO deployer.applied_objects (application_id, environment_id, object_key, object_ref,"
                 " manifest, source_path, wave, deployment_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                 " ON CONFLICT (application_id, environment_id, object_key) DO UPDATE SET object_ref = EXCLUDED.object_ref,"
                 " manifest = EXCLUDED.manifest, source_path = EXCLUDED.source_path, wave = EXCLUDED.wave,"
                 " deployment_id = EXCLUDED.deployment_id, applied_at = now()");
  pool_->Prepare(kDeleteApplied,
                 "DELETE FROM deployer.applied_objects WHERE application_id = $1 AND environment_id = $2"
                 " AND object_key = $3");
  pool_->Prepare(kGetDeployment, "SELECT record, seq FROM deployer.deployments WHERE id = $1");
  pool_->Prepare(kGetSpec, "SELECT spec FROM deployer.deployments WHERE id = $1");
  pool_->Prepare(kGetAttempts,
                 "SELECT attempts_without_progress, progress_mark FROM deployer.deployments WHERE id = $1");
  pool_->Prepare(kSaveAttempts,
                 "UPDATE deployer.deployments SET attempts_without_progress = $2, progress_mark = $3 WHERE id = $1");
  pool_->Prepare(kGetSteps, "SELECT record FROM deployer.steps WHERE deployment_id = $1 ORDER BY sequence");
  pool_->Prepare(kList,
                 "SELECT record, seq FROM deployer.deployments WHERE ($1 = '' OR application_id = $1)"
                 " AND ($2 = '' OR environment_id = $2) AND (cardinality($3::int[]) = 0 OR state = ANY($3::int[]))"
                 " AND ($4::bigint = 0 OR seq < $4::bigint) ORDER BY seq DESC LIMIT $5");
  pool_->Prepare(kUnfinished, "SELECT record, seq FROM deployer.deployments WHERE state IN (1, 2) ORDER BY seq");
  pool_->Prepare(kSucceeded,
                 "SELECT record, seq FROM deployer.deployments WHERE application_id = $1 AND environment_id = $2"
                 " AND state = 3 ORDER BY seq DESC");
  pool_->Prepare(kUnreported,
                 "SELECT d.record, d.seq FROM deployer.deployments d WHERE d.state IN (3, 4, 5) AND NOT d.reported"
                 " AND d.plan_id <> '' AND NOT EXISTS (SELECT 1 FROM deployer.deployments r WHERE r.state IN (1, 2)"
                 " AND r.application_id = d.application_id AND r.environment_id = d.environment_id) ORDER BY d.seq");
  // The ids through a sub-select: as a plain array it was planned afresh at
  // every call (a commit touching 10,000 applications: 2,779 plans, 0.26 s).
  pool_->Prepare(kMarkReported,
                 "UPDATE deployer.deployments SET reported = true WHERE id IN (SELECT unnest((SELECT $1::text[])))");
  pool_->Prepare(kApplied,
                 "SELECT object_ref, manifest, source_path, wave, deployment_id FROM deployer.applied_objects"
                 " WHERE application_id = $1 AND environment_id = $2 ORDER BY wave, object_key");
  pool_->Prepare(kManagedApps,
                 "SELECT application_id, environment_id, target, sync_policy, live_deployment_id"
                 " FROM deployer.managed_apps ORDER BY application_id, environment_id");
  pool_->Prepare(kManagedApp,
                 "SELECT application_id, environment_id, target, sync_policy, live_deployment_id"
                 " FROM deployer.managed_apps WHERE application_id = $1 AND environment_id = $2");
  pool_->Prepare(kGetPin, "SELECT record FROM deployer.pins WHERE application_id = $1 AND environment_id = $2");
  pool_->Prepare(kUpsertPin,
                 "INSERT INTO deployer.pins (application_id, environment_id, pinned, record) VALUES ($1, $2, $3, $4)"
                 " ON CONFLICT (application_id, environment_id) DO UPDATE SET pinned = EXCLUDED.pinned,"
                 " record = EXCLUDED.record");
  pool_->Prepare(kInsertDrift,
                 "INSERT INTO deployer.drift_events (application_id, environment_id, object_key, drift, message)"
                 " VALUES ($1, $2, $3, $4, $5) RETURNING id");
  pool_->Prepare(kHealDrift, "UPDATE deployer.drift_events SET healed_by = $2 WHERE id = ANY($1::bigint[])");
  pool_->Prepare(kGetDriftSettings,
                 "SELECT record FROM deployer.drift_settings WHERE application_id = $1 AND environment_id = $2");
  pool_->Prepare(kUpsertDriftSettings,
                 "INSERT INTO deployer.drift_settings (application_id, environment_id, record) VALUES ($1, $2, $3)"
                 " ON CONFLICT (application_id, environment_id) DO UPDATE SET record = EXCLUDED.record");
  pool_->Prepare(kGetCursor, "SELECT cursor FROM deployer.plan_cursors WHERE deployer_group = $1");
  pool_->Prepare(kUpsertCursor,
                 "INSERT INTO deployer.plan_cursors (deployer_group, cursor) VALUES ($1, $2)"
                 " ON CONFLICT (deployer_group) DO UPDATE SET cursor = EXCLUDED.cursor");
  // The fence checks also turn off the wait for this transaction's flush
  // when $2 says so (CommitWithoutWaitingForFlush), in the same round trip.
  pool_->Prepare(kCheckFence,
                 "SELECT holder, token, CASE WHEN $2::boolean THEN set_config('synchronous_commit', 'off', true) END"
                 " FROM deployer.environment_leases WHERE environment_id = $1 FOR SHARE");
  // A deployment never changes environment: its lease row is found through
  // it, in one statement (the lease row locked FOR SHARE as by kCheckFence).
  // No row: no such deployment, or no lease row (kDeploymentEnv tells).
  pool_->Prepare(kDeploymentFence,
                 "SELECT d.environment_id, l.holder, l.token,"
                 " CASE WHEN $2::boolean THEN set_config('synchronous_commit', 'off', true) END"
                 " FROM deployer.deployments d JOIN deployer.environment_leases l ON l.environment_id = d.environment_id"
                 " WHERE d.id = $1 FOR SHARE OF l");
  pool_->Prepare(kDeploymentEnv, "SELECT environment_id FROM deployer.deployments WHERE id = $1");
  // A step alone (no applied change, no event) of a deployment whose
  // environment ($4) is known: the fence check and the upsert in one
  // statement, its own transaction (one round trip). The lease row is
  // locked FOR SHARE until it commits, as in a transaction; the step is
  // written only when this replica ($5) holds it with its token ($6). The
  // row (or none: no lease row) is returned for the verdict.
  pool_->Prepare(kFencedStep,
                 "WITH f AS (SELECT holder, token, set_config('synchronous_commit', 'off', true)"
                 " FROM deployer.environment_leases WHERE environment_id = $4 FOR SHARE),"
                 " s AS (INSERT INTO deployer.steps (deployment_id, sequence, record) SELECT $1, $2, $3 FROM f"
                 " WHERE f.holder = $5 AND f.token = $6"
                 " ON CONFLICT (deployment_id, sequence) DO UPDATE SET record = EXCLUDED.record RETURNING 1)"
                 " SELECT f.holder, f.token, (SELECT count(*) FROM s) FROM f");
  // A step with what it changed in the applied state and its audit event,
  // all of SaveStep in one statement: the fenced step as kFencedStep, then,
  // only when the fence holds, a second step ($18 sequence, $19 record;
  // none when $18 is 0), $7 = 1: the upsert of an applied object ($8-$15),
  // 2: its deletion ($8-$10); an outbox row ($16 key, $17 event; none when
  // $16 is empty), as Enqueue writes it (the forwarder is woken in-process,
  // ConnectionPool::WakeAfterCommit, not by NOTIFY).
  pool_->Prepare(kFencedStepOutcome,
                 "WITH f AS (SELECT holder, token, set_config('synchronous_commit', 'off', true)"
                 " FROM deployer.environment_leases WHERE environment_id = $4 FOR SHARE),"
                 " ok AS (SELECT 1 FROM f WHERE f.holder = $5 AND f.token = $6),"
                 " s AS (INSERT INTO deployer.steps (deployment_id, sequence, record) SELECT $1, v.seq, v.rec FROM ok,"
                 " (VALUES ($2::bigint, $3::bytea), ($18::bigint, $19::bytea)) AS v(seq, rec) WHERE v.seq > 0"
                 " ON CONFLICT (deployment_id, sequence) DO UPDATE SET record = EXCLUDED.record RETURNING 1),"
                 " a AS (INSERT INTO deployer.applied_objects (application_id, environment_id, object_key, object_ref,"
                 " manifest, source_path, wave, deployment_id) SELECT $8, $9, $10, $11, $12, $13, $14, $15 FROM ok"
                 " WHERE $7 = 1"
                 " ON CONFLICT (application_id, environment_id, object_key) DO UPDATE SET object_ref = EXCLUDED.object_ref,"
                 " manifest = EXCLUDED.manifest, source_path = EXCLUDED.source_path, wave = EXCLUDED.wave,"
                 " deployment_id = EXCLUDED.deployment_id, applied_at = now() RETURNING 1),"
                 " x AS (DELETE FROM deployer.applied_objects WHERE $7 = 2 AND application_id = $8"
                 " AND environment_id = $9 AND object_key = $10 AND EXISTS (SELECT 1 FROM ok) RETURNING 1),"
                 " o AS (INSERT INTO deployer.outbox (idempotency_key, event) SELECT $16, $17 FROM ok WHERE $16 <> ''"
                 " RETURNING 1)"
                 " SELECT f.holder, f.token, (SELECT count(*) FROM s), (SELECT count(*) FROM o),"
                 " (SELECT count(*) FROM a), (SELECT count(*) FROM x) FROM f");
  // All of Update without a pin in one statement: the fenced update as
  // kFencedUpdate, then, only when it updated the deployment, the managed
  // application ($13: whether; $8-$12 as kUpsertManaged), a step saved
  // before it ($16 sequence, $17 record; none when $16 is 0) and outbox
  // rows: the step's ($18 key, $19 event), then the update's ($14 key, $15
  // event); none when the key is empty.
  pool_->Prepare(kFencedUpdateOutcome,
                 "WITH f AS (SELECT holder, token,"
                 " CASE WHEN $7::boolean THEN set_config('synchronous_commit', 'off', true) END"
                 " FROM deployer.environment_leases WHERE environment_id = $4 FOR SHARE),"
                 " u AS (UPDATE deployer.deployments d SET state = $2, record = $3 FROM f"
                 " WHERE d.id = $1 AND f.holder = $5 AND f.token = $6 RETURNING 1),"
                 " m AS (INSERT INTO deployer.managed_apps (application_id, environment_id, target, sync_policy,"
                 " live_deployment_id) SELECT $8, $9, $10, $11, $12 FROM u WHERE $13::boolean"
                 " ON CONFLICT (application_id, environment_id) DO UPDATE SET target = EXCLUDED.target,"
                 " sync_policy = EXCLUDED.sync_policy, live_deployment_id = CASE WHEN EXCLUDED.live_deployment_id = ''"
                 " THEN deployer.managed_apps.live_deployment_id ELSE EXCLUDED.live_deployment_id END RETURNING 1),"
                 " st AS (INSERT INTO deployer.steps (deployment_id, sequence, record) SELECT $1, $16, $17 FROM u"
                 " WHERE $16::bigint > 0"
                 " ON CONFLICT (deployment_id, sequence) DO UPDATE SET record = EXCLUDED.record RETURNING 1),"
                 " o AS (INSERT INTO deployer.outbox (idempotency_key, event) SELECT v.k, v.e FROM u,"
                 " (VALUES (1, $18::text, $19::bytea), (2, $14::text, $15::bytea)) AS v(n, k, e) WHERE v.k <> ''"
                 " ORDER BY v.n RETURNING 1)"
                 " SELECT f.holder, f.token, (SELECT count(*) FROM u), (SELECT count(*) FROM o),"
                 " (SELECT count(*) FROM m), (SELECT count(*) FROM st) FROM f");
  // The same for a deployment's record ($1 id, $2 state, $3 record) in
  // environment $4, held by $5 with token $6; $7: without the flush wait.
  pool_->Prepare(kFencedUpdate,
                 "WITH f AS (SELECT holder, token,"
                 " CASE WHEN $7::boolean THEN set_config('synchronous_commit', 'off', true) END"
                 " FROM deployer.environment_leases WHERE environment_id = $4 FOR SHARE),"
                 " u AS (UPDATE deployer.deployments d SET state = $2, record = $3 FROM f"
                 " WHERE d.id = $1 AND f.holder = $5 AND f.token = $6 RETURNING 1)"
                 " SELECT f.holder, f.token, (SELECT count(*) FROM u) FROM f");
  // kFencedUpdateOutcome for several deployments of environment $1 at once
  // (issue #23: concurrently running deployments share one statement), held
  // by $2 with token $3; $4: without the flush wait (all of them running).
  // One element per deployment in each array: $5 id, $6 state, $7 record
  // (base64), $8 whether the managed application is written, $9-$13 it
  // ($11, $12 base64), $14 the update's outbox key and $15 event (base64),
  // $16 the step's sequence (0: none) and $17 record (base64), $18 its
  // outbox key and $19 event (base64). Returns the ids updated.
  pool_->Prepare(kFencedUpdatesOutcome,
                 "WITH f AS (SELECT holder, token,"
                 " CASE WHEN $4::boolean THEN set_config('synchronous_commit', 'off', true) END"
                 " FROM deployer.environment_leases WHERE environment_id = $1 FOR SHARE),"
                 " r AS (SELECT * FROM unnest($5::text[], $6::int[], $7::text[], $8::boolean[], $9::text[],"
                 " $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::bigint[],"
                 " $17::text[], $18::text[], $19::text[]) WITH ORDINALITY"
                 " AS r(id, state, rec, has_app, m_app, m_env, m_target, m_sync, m_live, ekey, ev, sseq, srec, skey, sev,"
                 " n)),"
                 " u AS (UPDATE deployer.deployments d SET state = r.state, record = decode(r.rec, 'base64') FROM r, f"
                 " WHERE d.id = r.id AND f.holder = $2 AND f.token = $3 RETURNING d.id),"
                 " ur AS (SELECT r.* FROM r JOIN u ON u.id = r.id),"
                 " m AS (INSERT INTO deployer.managed_apps (application_id, environment_id, target, sync_policy,"
                 " live_deployment_id) SELECT m_app, m_env, decode(m_target, 'base64'), decode(m_sync, 'base64'), m_live"
                 " FROM ur WHERE has_app"
                 " ON CONFLICT (application_id, environment_id) DO UPDATE SET target = EXCLUDED.target,"
                 " sync_policy = EXCLUDED.sync_policy, live_deployment_id = CASE WHEN EXCLUDED.live_deployment_id = ''"
                 " THEN deployer.managed_apps.live_deployment_id ELSE EXCLUDED.live_deployment_id END RETURNING 1),"
                 " st AS (INSERT INTO deployer.steps (deployment_id, sequence, record)"
                 " SELECT id, sseq, decode(srec, 'base64') FROM ur WHERE sseq > 0"
                 " ON CONFLICT (deployment_id, sequence) DO UPDATE SET record = EXCLUDED.record RETURNING 1),"
                 " o AS (INSERT INTO deployer.outbox (idempotency_key, event) SELECT v.k, decode(v.e, 'base64') FROM ur,"
                 " LATERAL (VALUES (1, ur.skey, ur.sev), (2, ur.ekey, ur.ev)) AS v(i, k, e) WHERE v.k <> ''"
                 " ORDER BY ur.n, v.i RETURNING 1)"
                 " SELECT f.holder, f.token, (SELECT array_agg(id) FROM u), (SELECT count(*) FROM o),"
                 " (SELECT count(*) FROM m), (SELECT count(*) FROM st) FROM f");
  // kFencedStepOutcome for several deployments of environment $1 at once,
  // held by $2 with token $3. One element per deployment in each array: $4
  // its id, $5 the first step's sequence and $6 record (base64), $7 the
  // second's (0: none) and $8 record, $9 the applied change's kind (0 none,
  // 1 upsert, 2 deletion), $10-$17 the applied object ($13 base64), $18 the
  // outbox key (none when empty) and $19 event (base64).
  pool_->Prepare(kFencedStepsOutcome,
                 "WITH f AS (SELECT holder, token, set_config('synchronous_commit', 'off', true)"
                 " FROM deployer.environment_leases WHERE environment_id = $1 FOR SHARE),"
                 " ok AS (SELECT 1 AS held FROM f WHERE f.holder = $2 AND f.token = $3),"
                 " r AS (SELECT x.* FROM ok, unnest($4::text[], $5::bigint[], $6::text[], $7::bigint[], $8::text[],"
                 " $9::int[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::int[],"
                 " $17::text[], $18::text[], $19::text[]) WITH ORDINALITY"
                 " AS x(id, seq1, rec1, seq2, rec2, kind, c_app, c_env, c_key, c_ref, c_json, c_source, c_wave, c_dep,"
                 " ekey, ev, n)),"
                 " s AS (INSERT INTO deployer.steps (deployment_id, sequence, record)"
                 " SELECT r.id, v.seq, decode(v.rec, 'base64') FROM r,"
                 " LATERAL (VALUES (r.seq1, r.rec1), (r.seq2, r.rec2)) AS v(seq, rec) WHERE v.seq > 0"
                 " ON CONFLICT (deployment_id, sequence) DO UPDATE SET record = EXCLUDED.record RETURNING 1),"
                 " a AS (INSERT INTO deployer.applied_objects (application_id, environment_id, object_key, object_ref,"
                 " manifest, source_path, wave, deployment_id) SELECT c_app, c_env, c_key, decode(c_ref, 'base64'),"
                 " c_json, c_source, c_wave, c_dep FROM r WHERE kind = 1"
                 " ON CONFLICT (application_id, environment_id, object_key) DO UPDATE SET object_ref = EXCLUDED.object_ref,"
                 " manifest = EXCLUDED.manifest, source_path = EXCLUDED.source_path, wave = EXCLUDED.wave,"
                 " deployment_id = EXCLUDED.deployment_id, applied_at = now() RETURNING 1),"
                 " x AS (DELETE FROM deployer.applied_objects t USING r WHERE r.kind = 2 AND t.application_id = r.c_app"
                 " AND t.environment_id = r.c_env AND t.object_key = r.c_key RETURNING 1),"
                 " o AS (INSERT INTO deployer.outbox (idempotency_key, event) SELECT ekey, decode(ev, 'base64') FROM r"
                 " WHERE ekey <> '' ORDER BY n RETURNING 1)"
                 " SELECT f.holder, f.token, (SELECT count(*) FROM s), (SELECT count(*) FROM o),"
                 " (SELECT count(*) FROM a), (SELECT count(*) FROM x) FROM f");
  // One row per applied object (one with NULL object columns when none),
  // each carrying the managed record and the application's own settings.
  pool_->Prepare(kDriftCheckInputs,
                 "SELECT m.application_id, m.environment_id, m.target, m.sync_policy, m.live_deployment_id,"
                 " (SELECT s.record FROM deployer.drift_settings s WHERE s.application_id = $1"
                 " AND s.environment_id = $2),"
                 " a.object_ref, a.manifest, a.source_path, a.wave, a.deployment_id"
                 " FROM deployer.managed_apps m LEFT JOIN deployer.applied_objects a"
                 " ON a.application_id = m.application_id AND a.environment_id = m.environment_id"
                 " WHERE m.application_id = $1 AND m.environment_id = $2 ORDER BY a.wave, a.object_key");
  // kDriftCheckInputs for the (application, environment) pairs of two
  // parallel arrays, ordered so that an application's rows are together.
  pool_->Prepare(kDriftCheckInputsOf,
                 "SELECT m.application_id, m.environment_id, m.target, m.sync_policy, m.live_deployment_id, s.record,"
                 " a.object_ref, a.manifest, a.source_path, a.wave, a.deployment_id"
                 " FROM unnest($1::text[], $2::text[]) AS k(application_id, environment_id)"
                 " JOIN deployer.managed_apps m"
                 " ON m.application_id = k.application_id AND m.environment_id = k.environment_id"
                 " LEFT JOIN deployer.drift_settings s"
                 " ON s.application_id = m.application_id AND s.environment_id = m.environment_id"
                 " LEFT JOIN deployer.applied_objects a"
                 " ON a.application_id = m.application_id AND a.environment_id = m.environment_id"
                 " ORDER BY m.application_id, m.environment_id, a.wave, a.object_key");
  // ReadAppState: a first row with the managed record (when asked: $5), the
  // pin, the deployment $3 and the live deployment, then one row per applied
  // object (when asked: $4). The records come once, not on every object's
  // row: at 20,000 applied objects that repetition was some 10 MB that
  // PostgreSQL encoded for each page of a live-state observation
  // (bench/bigplan's one-file change).
  // A page of the applied objects: keys after $6 ('' = from the first)
  // compared as bytes (COLLATE "C", as std::string compares them), at most
  // $7 (0 = all) of them; the first row says whether there are any at all.
  pool_->Prepare(kAppState,
                 "SELECT m.application_id, m.environment_id, m.target, m.sync_policy, m.live_deployment_id,"
                 " p.record, d.record, l.record, NULL::bytea AS object_ref, NULL::text AS manifest,"
                 " NULL::text AS source_path, NULL::integer AS wave, NULL::text AS deployment_id, 0 AS part,"
                 " NULL::text AS object_key,"
                 " $4::boolean AND EXISTS (SELECT 1 FROM deployer.applied_objects x WHERE x.application_id = $1"
                 " AND x.environment_id = $2) AS has_applied"
                 " FROM (SELECT 1) one"
                 " LEFT JOIN deployer.managed_apps m ON $5::boolean AND m.application_id = $1 AND m.environment_id = $2"
                 " LEFT JOIN deployer.deployments l ON l.id = m.live_deployment_id"
                 " LEFT JOIN deployer.pins p ON p.application_id = $1 AND p.environment_id = $2"
                 " LEFT JOIN deployer.deployments d ON d.id = $3"
                 " UNION ALL"
                 " SELECT * FROM (SELECT NULL::text, NULL::text, NULL::bytea, NULL::bytea, NULL::text, NULL::bytea,"
                 " NULL::bytea, NULL::bytea, a.object_ref, a.manifest, a.source_path, a.wave, a.deployment_id, 1,"
                 " a.object_key, NULL::boolean"
                 " FROM deployer.applied_objects a WHERE $4::boolean AND a.application_id = $1"
                 " AND a.environment_id = $2 AND a.object_key COLLATE \"C\" > $6::text COLLATE \"C\""
                 " ORDER BY a.object_key COLLATE \"C\" LIMIT CASE WHEN $7::bigint > 0 THEN $7::bigint END) page"
                 " ORDER BY part, wave, object_key");
  // kAppState for several reads at once, each an element of the arrays ($1
  // application, $2 environment, $3 deployment, $4 applied objects wanted,
  // $5 managed record wanted, $6 objects after this key, $7 at most this
  // many (0: all)): its rows as kAppState's, each with the read's number
  // (from 1) in a last column, ordered by it. The arrays come through
  // sub-selects: passed plainly, PostgreSQL planned the statement afresh
  // at every call (0.8 ms each, more than it took to run), as it did
  // kUpdatePlanVersions'.
  pool_->Prepare(kAppStates,
                 "SELECT m.application_id, m.environment_id, m.target, m.sync_policy, m.live_deployment_id,"
                 " p.record, d.record, l.record, NULL::bytea AS object_ref, NULL::text AS manifest,"
                 " NULL::text AS source_path, NULL::integer AS wave, NULL::text AS deployment_id, 0 AS part,"
                 " NULL::text AS object_key,"
                 " k.want_applied AND EXISTS (SELECT 1 FROM deployer.applied_objects x WHERE x.application_id = k.app"
                 " AND x.environment_id = k.env) AS has_applied, k.n AS n"
                 " FROM unnest((SELECT $1::text[]), (SELECT $2::text[]), (SELECT $3::text[]), (SELECT $4::boolean[]),"
                 " (SELECT $5::boolean[]), (SELECT $6::text[]), (SELECT $7::bigint[])) WITH ORDINALITY"
                 " AS k(app, env, dep, want_applied, want_managed, after, lim, n)"
                 " LEFT JOIN deployer.managed_apps m ON k.want_managed AND m.application_id = k.app"
                 " AND m.environment_id = k.env"
                 " LEFT JOIN deployer.deployments l ON l.id = m.live_deployment_id"
                 " LEFT JOIN deployer.pins p ON p.application_id = k.app AND p.environment_id = k.env"
                 " LEFT JOIN deployer.deployments d ON d.id = k.dep"
                 " UNION ALL"
                 " SELECT NULL::text, NULL::text, NULL::bytea, NULL::bytea, NULL::text, NULL::bytea,"
                 " NULL::bytea, NULL::bytea, a.object_ref, a.manifest, a.source_path, a.wave, a.deployment_id, 1,"
                 " a.object_key, NULL::boolean, k.n"
                 " FROM unnest((SELECT $1::text[]), (SELECT $2::text[]), (SELECT $3::text[]), (SELECT $4::boolean[]),"
                 " (SELECT $5::boolean[]), (SELECT $6::text[]), (SELECT $7::bigint[])) WITH ORDINALITY"
                 " AS k(app, env, dep, want_applied, want_managed, after, lim, n)"
                 " CROSS JOIN LATERAL (SELECT * FROM deployer.applied_objects a WHERE k.want_applied"
                 " AND a.application_id = k.app AND a.environment_id = k.env"
                 " AND a.object_key COLLATE \"C\" > k.after COLLATE \"C\""
                 " ORDER BY a.object_key COLLATE \"C\" LIMIT CASE WHEN k.lim > 0 THEN k.lim END) a"
                 " ORDER BY n, part, wave, object_key");
  pool_->Prepare(kDriftEnvs,
                 "SELECT DISTINCT environment_id FROM deployer.drift_events WHERE id = ANY($1::bigint[])");
}

// A running deployment's steps and its RUNNING record commit without waiting
// for their WAL flush (synchronous_commit off): seven flush waits of a
// two-object deployment become one (issue #23). Nothing is lost when the
// deployer dies: PostgreSQL has them, and its WAL writer flushes them within
// wal_writer_delay. Only a crash of PostgreSQL itself could lose the last of
// them, and never out of order (WAL is replayed as a prefix): the deployment
// is then where it stood a moment earlier, which orphan recovery resumes as
// after any interruption (it observes the target before applying again). The
// deployment's terminal record, its creation and everything reported to the
// planner wait for the flush as before, and that flush covers every earlier
// step of it.
// With fences, the fence check turns it off in its own statement (no round
// trip of its own).
void PostgresDeploymentStore::CommitWithoutWaitingForFlush(pqxx::work& txn) {
  txn.exec("SET LOCAL synchronous_commit TO OFF");
}

absl::Status PostgresDeploymentStore::Enqueue(pqxx::work& txn, const std::vector<v1::Event>& events) {
  for (const v1::Event& e : events) {
    absl::Status s = outbox_->Enqueue(txn, e);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status PostgresDeploymentStore::JudgeFence(const std::string& env, const pqxx::field* holder,
                                                 const pqxx::field* token) {
  return JudgeFence(env, scope_.fences->TokenFor(env), holder, token);
}

absl::Status PostgresDeploymentStore::JudgeFence(const std::string& env, int64_t mine, const pqxx::field* holder,
                                                 const pqxx::field* token) {
  const std::string& me = scope_.fences->holder();
  if (mine == 0) {
    return absl::AbortedError(absl::StrCat("deployer ", me, " does not hold the lease of environment \"", env,
                                           "\" (or it may have expired): nothing recorded; its holder acts there"));
  }
  const bool none = holder == nullptr || holder->is_null();
  if (none || holder->as<std::string>() != me || token->as<int64_t>() != mine) {
    std::string now =
        none ? std::string("nobody") : absl::StrCat(holder->as<std::string>(), " (token ", token->as<int64_t>(), ")");
    return absl::AbortedError(absl::StrCat("deployer ", me, " lost the lease of environment \"", env, "\" (token ",
                                           mine, ") to ", now, ": nothing recorded"));
  }
  return absl::OkStatus();
}

absl::Status PostgresDeploymentStore::JudgeFenceRow(const pqxx::result& r, const std::string& env, int64_t mine) {
  if (r.empty()) return JudgeFence(env, mine, nullptr, nullptr);
  const pqxx::field holder = r[0][0], token = r[0][1];
  return JudgeFence(env, mine, &holder, &token);
}

absl::Status PostgresDeploymentStore::CheckFence(pqxx::work& txn, const std::string& env, bool no_flush_wait) {
  if (scope_.fences == nullptr) {
    if (no_flush_wait) CommitWithoutWaitingForFlush(txn);
    return absl::OkStatus();
  }
  // Refused without asking when this replica knows it holds no lease there.
  if (scope_.fences->TokenFor(env) == 0) return JudgeFence(env, nullptr, nullptr);
  pqxx::result r = txn.exec_prepared(kCheckFence, env, no_flush_wait);
  if (r.empty()) return JudgeFence(env, nullptr, nullptr);
  const pqxx::field holder = r[0][0], token = r[0][1];
  return JudgeFence(env, &holder, &token);
}

absl::Status PostgresDeploymentStore::CheckDeploymentFence(pqxx::work& txn, const std::string& id,
                                                           bool no_flush_wait) {
  if (scope_.fences == nullptr) {
    if (no_flush_wait) CommitWithoutWaitingForFlush(txn);
    return absl::OkStatus();
  }
  pqxx::result r = txn.exec_prepared(kDeploymentFence, id, no_flush_wait);
  if (r.empty()) {
    pqxx::result env = txn.exec_prepared(kDeploymentEnv, id);
    if (env.empty()) return absl::NotFoundError(absl::StrCat("deployment ", id, " not found"));
    RememberEnvironment(id, env[0][0].as<std::string>());
    return JudgeFence(env[0][0].as<std::string>(), nullptr, nullptr);
  }
  RememberEnvironment(id, r[0][0].as<std::string>());
  const pqxx::field holder = r[0][1], token = r[0][2];
  return JudgeFence(r[0][0].as<std::string>(), &holder, &token);
}

void PostgresDeploymentStore::RememberEnvironment(const std::string& id, const std::string& env) {
  ferry::MutexLock l(&envs_mu_);
  if (env_of_.size() >= kRememberedEnvironments) env_of_.clear();
  env_of_[id] = env;
}

std::optional<std::string> PostgresDeploymentStore::EnvironmentOf(const std::string& id) {
  ferry::MutexLock l(&envs_mu_);
  auto it = env_of_.find(id);
  if (it == env_of_.end()) return std::nullopt;
  return it->second;
}

absl::Status PostgresDeploymentStore::Create(const v1::Deployment& d, const v1::Plan& spec,
                                             const std::vector<v1::Event>& events) {
  if (!events.empty() || spec.ByteSizeLong() > kMaxBatchedSpecBytes) return CreateAlone(d, spec, events);
  return creates_.Run(NewDeployment{&d, &spec}, d.id());
}

void PostgresDeploymentStore::SharedStatementFailed(std::string_view statement, size_t calls,
                                                    const absl::Status& error) {
  shared_statements_failed_.fetch_add(1);
  logging::Warn("a shared statement failed; running each of its calls alone",
                {{"statement", statement}, {"calls", static_cast<int64_t>(calls)}, {"error", error.ToString()}});
}

std::vector<absl::Status> PostgresDeploymentStore::CreateAll(std::vector<NewDeployment*>& batch) {
  if (batch.size() > 1) {
    std::vector<std::string> ids, apps, envs, plans, states, records, specs;
    for (const NewDeployment* n : batch) {
      const v1::Deployment& d = *n->deployment;
      v1::Deployment record = d;
      record.clear_steps();
      ids.push_back(d.id());
      apps.push_back(d.application_id());
      envs.push_back(d.environment_id());
      plans.push_back(d.plan_id());
      states.push_back(absl::StrCat(static_cast<int>(d.state())));
      records.push_back(Base64(record.SerializeAsString()));
      specs.push_back(Base64(n->spec->SerializeAsString()));
    }
    using postgres::TextArray;
    absl::Status together = pool_->RunStatement([&](pqxx::transaction_base& txn) -> absl::Status {
      txn.exec_prepared0(kInsertDeployments, TextArray(ids), TextArray(apps), TextArray(envs), TextArray(plans),
                         TextArray(states), TextArray(records), TextArray(specs));
      return absl::OkStatus();
    });
    if (together.ok()) {
      creates_together_.fetch_add(batch.size());
      for (const NewDeployment* n : batch) RememberEnvironment(n->deployment->id(), n->deployment->environment_id());
      return std::vector<absl::Status>(batch.size(), absl::OkStatus());
    }
    // Nothing of it was inserted (one statement), e.g. one already there:
    // each alone, for its own answer.
    SharedStatementFailed(kInsertDeployments, batch.size(), together);
  }
  std::vector<absl::Status> out;
  for (const NewDeployment* n : batch) out.push_back(CreateAlone(*n->deployment, *n->spec, {}));
  return out;
}

absl::Status PostgresDeploymentStore::CreateAlone(const v1::Deployment& d, const v1::Plan& spec,
                                                  const std::vector<v1::Event>& events) {
  v1::Deployment record = d;
  record.clear_steps();
  auto insert = [&](pqxx::transaction_base& txn) {
    txn.exec_prepared0(kInsertDeployment, d.id(), d.application_id(), d.environment_id(), d.plan_id(),
                       static_cast<int>(d.state()), Bytes(record), Bytes(spec));
    return absl::OkStatus();
  };
  // Without events one statement; with them, a transaction.
  absl::Status s = events.empty() ? pool_->RunStatement(insert) : pool_->RunInTransaction([&](pqxx::work& txn) {
    absl::Status inserted = insert(txn);
    if (!inserted.ok()) return inserted;
    return Enqueue(txn, events);
  });
  if (s.ok()) RememberEnvironment(d.id(), d.environment_id());
  return s;
}

absl::StatusOr<std::optional<outbox::OutboxStore::Row>> PostgresDeploymentStore::OneEventRow(
    const std::vector<v1::Event>& events) {
  // The row the outbox would write for a single event into this service's
  // outbox table, for a statement that writes it itself; nullopt (use a
  // transaction) for no or several events, or an outbox that cannot say.
  if (events.size() != 1) return std::optional<outbox::OutboxStore::Row>();
  absl::StatusOr<outbox::OutboxStore::Row> prepared = outbox_->Prepare(events[0]);
  if (prepared.ok() && prepared->table == kOutboxTable) {
    return std::optional<outbox::OutboxStore::Row>(*std::move(prepared));
  }
  if (!prepared.ok() && !absl::IsUnimplemented(prepared.status())) return prepared.status();
  return std::optional<outbox::OutboxStore::Row>();
}

absl::Status PostgresDeploymentStore::Update(const v1::Deployment& d, const std::vector<v1::Event>& events,
                                             const ManagedApp* app, const v1::PinState* pin) {
  return SaveStepsThenUpdate({}, d, events, app, pin);
}

absl::Status PostgresDeploymentStore::SaveStepsThenUpdate(const std::vector<StepWrite>& steps, const v1::Deployment& d,
                                                          const std::vector<v1::Event>& events, const ManagedApp* app,
                                                          const v1::PinState* pin) {
  v1::Deployment record = d;
  record.clear_steps();
  const bool no_flush_wait = !IsTerminal(d.state());
  const std::string& env = d.environment_id();
  const int64_t mine = scope_.fences != nullptr ? scope_.fences->TokenFor(env) : 0;
  if (scope_.fences != nullptr && mine == 0) return JudgeFence(env, mine, nullptr, nullptr);
  // With fences, no pin, at most one audit event (a deployment starting or
  // ending) and at most one step before it without an applied change and
  // with at most one event (the last health check): one statement
  // (kFencedUpdateOutcome), when the outbox lets it write the events' rows.
  const StepWrite* step = steps.size() == 1 ? &steps[0] : nullptr;
  if (scope_.fences != nullptr && pin == nullptr && events.size() <= 1 && steps.size() <= 1 &&
      (step == nullptr || (!step->change.has_value() && step->events.size() <= 1))) {
    absl::StatusOr<std::optional<outbox::OutboxStore::Row>> one = OneEventRow(events);
    if (!one.ok()) return one.status();
    const std::optional<outbox::OutboxStore::Row>& row = *one;
    absl::StatusOr<std::optional<outbox::OutboxStore::Row>> step_one =
        step != nullptr ? OneEventRow(step->events) : std::optional<outbox::OutboxStore::Row>();
    if (!step_one.ok()) return step_one.status();
    const std::optional<outbox::OutboxStore::Row>& step_row = *step_one;
    if ((events.empty() || row.has_value()) && (step == nullptr || step->events.empty() || step_row.has_value())) {
      FencedUpdate w;
      w.env = env;
      w.mine = mine;
      w.id = d.id();
      w.state = static_cast<int>(d.state());
      w.record = record.SerializeAsString();
      w.no_flush_wait = no_flush_wait;
      if (app != nullptr) w.app = *app;
      w.event = row;
      if (step != nullptr) {
        w.step_sequence = step->step.sequence();
        w.step_record = step->step.SerializeAsString();
        w.step_event = step_row;
      }
      return fenced_updates_.Run(std::move(w), d.id());
    }
  }
  return pool_->RunInTransaction([&](pqxx::work& txn) -> absl::Status {
    if (scope_.fences != nullptr) {
      // The fence check and the update in one statement (kFencedUpdate).
      pqxx::result r = txn.exec_prepared(kFencedUpdate, d.id(), static_cast<int>(d.state()), Bytes(record), env,
                                         scope_.fences->holder(), mine, no_flush_wait);
      if (r.empty()) return JudgeFence(env, mine, nullptr, nullptr);
      const pqxx::field holder = r[0][0], token = r[0][1];
      if (absl::Status fenced = JudgeFence(env, mine, &holder, &token); !fenced.ok()) return fenced;
      if (r[0][2].as<int64_t>() != 1) return absl::NotFoundError(absl::StrCat("deployment ", d.id(), " not found"));
    } else {
      if (no_flush_wait) CommitWithoutWaitingForFlush(txn);
      pqxx::result r = txn.exec_prepared(kUpdateDeployment, d.id(), static_cast<int>(d.state()), Bytes(record));
      if (r.affected_rows() != 1) return absl::NotFoundError(absl::StrCat("deployment ", d.id(), " not found"));
    }
    // The steps before the update they end with, their events first.
    for (const StepWrite& w : steps) {
      if (absl::Status s = WriteStep(txn, d.id(), w); !s.ok()) return s;
    }
    if (app != nullptr) {
      txn.exec_prepared0(kUpsertManaged, app->application_id, app->environment_id, Bytes(app->target),
                         Bytes(app->sync_policy), app->live_deployment_id);
    }
    if (pin != nullptr) {
      txn.exec_prepared0(kUpsertPin, pin->application_id(), pin->environment_id(), pin->pinned(), Bytes(*pin));
    }
    return Enqueue(txn, events);
  });
}

namespace {

// A batch of fenced writes (each with its `env` and this replica's token
// `mine` there), by environment and token: one shared statement each
// (`together`; a commit touching many applications is usually one
// environment), counted in `written_together`. A group of one, or one
// whose statement failed whole (nothing of it was written, e.g. an event
// already in the outbox), is written one by one (`alone`), each with its
// own verdict; `failed` hears of each shared statement that failed whole.
template <typename W>
std::vector<absl::Status> WriteByEnvironment(
    std::vector<W*>& batch, const std::function<absl::StatusOr<std::vector<absl::Status>>(const std::vector<W*>&)>& together,
    const std::function<absl::Status(const W&)>& alone, std::atomic<uint64_t>& written_together,
    const std::function<void(size_t, const absl::Status&)>& failed) {
  std::vector<absl::Status> out(batch.size());
  std::map<std::pair<std::string, int64_t>, std::vector<size_t>> groups;
  for (size_t i = 0; i < batch.size(); ++i) groups[{batch[i]->env, batch[i]->mine}].push_back(i);
  for (const auto& [key, indexes] : groups) {
    if (indexes.size() > 1) {
      std::vector<W*> group;
      for (size_t i : indexes) group.push_back(batch[i]);
      absl::StatusOr<std::vector<absl::Status>> shared = together(group);
      if (shared.ok()) {
        written_together.fetch_add(group.size());
        for (size_t k = 0; k < indexes.size(); ++k) out[indexes[k]] = (*shared)[k];
        continue;
      }
      failed(group.size(), shared.status());
    }
    for (size_t i : indexes) out[i] = alone(*batch[i]);
  }
  return out;
}

}  // namespace

absl::Status PostgresDeploymentStore::WriteFencedUpdate(const FencedUpdate& w) {
  const ManagedApp no_app;
  const ManagedApp& a = w.app.has_value() ? *w.app : no_app;
  const outbox::OutboxStore::Row no_event;
  const outbox::OutboxStore::Row& e = w.event.has_value() ? *w.event : no_event;
  const outbox::OutboxStore::Row& se = w.step_event.has_value() ? *w.step_event : no_event;
  const int64_t rows = (w.event.has_value() ? 1 : 0) + (w.step_event.has_value() ? 1 : 0);
  return pool_->RunStatement([&](pqxx::transaction_base& txn) -> absl::Status {
    pqxx::result r = txn.exec_prepared(
        kFencedUpdateOutcome, w.id, w.state, pqxx::binarystring(w.record), w.env, scope_.fences->holder(), w.mine,
        w.no_flush_wait, a.application_id, a.environment_id, Bytes(a.target), Bytes(a.sync_policy),
        a.live_deployment_id, w.app.has_value(), e.idempotency_key, pqxx::binarystring(e.event), w.step_sequence,
        pqxx::binarystring(w.step_record), se.idempotency_key, pqxx::binarystring(se.event));
    if (absl::Status fenced = JudgeFenceRow(r, w.env, w.mine); !fenced.ok()) return fenced;
    if (r[0][2].as<int64_t>() != 1) return absl::NotFoundError(absl::StrCat("deployment ", w.id, " not found"));
    if (r[0][3].as<int64_t>() > 0) pool_->WakeAfterCommit(w.event.has_value() ? e.channel : se.channel);
    if (r[0][3].as<int64_t>() != rows || r[0][4].as<int64_t>() != (w.app.has_value() ? 1 : 0) ||
        r[0][5].as<int64_t>() != (w.step_sequence > 0 ? 1 : 0)) {
      return absl::InternalError("deployment not recorded whole although the fence held");
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<absl::Status>> PostgresDeploymentStore::WriteFencedUpdatesTogether(
    const std::vector<FencedUpdate*>& group) {
  const std::string& env = group.front()->env;
  const int64_t mine = group.front()->mine;
  std::vector<std::string> ids, states, records, has_app, m_app, m_env, m_target, m_sync, m_live, ekey, ev, sseq, srec,
      skey, sev;
  bool no_flush_wait = true;
  for (const FencedUpdate* w : group) {
    ids.push_back(w->id);
    states.push_back(absl::StrCat(w->state));
    records.push_back(Base64(w->record));
    no_flush_wait = no_flush_wait && w->no_flush_wait;
    const ManagedApp no_app;
    const ManagedApp& a = w->app.has_value() ? *w->app : no_app;
    has_app.push_back(w->app.has_value() ? "t" : "f");
    m_app.push_back(a.application_id);
    m_env.push_back(a.environment_id);
    m_target.push_back(Base64(a.target.SerializeAsString()));
    m_sync.push_back(Base64(a.sync_policy.SerializeAsString()));
    m_live.push_back(a.live_deployment_id);
    ekey.push_back(w->event.has_value() ? w->event->idempotency_key : "");
    ev.push_back(w->event.has_value() ? Base64(w->event->event) : "");
    sseq.push_back(absl::StrCat(w->step_sequence));
    srec.push_back(Base64(w->step_record));
    skey.push_back(w->step_event.has_value() ? w->step_event->idempotency_key : "");
    sev.push_back(w->step_event.has_value() ? Base64(w->step_event->event) : "");
  }
  using postgres::TextArray;
  return pool_->RunStatementWithResult<std::vector<absl::Status>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::vector<absl::Status>> {
        pqxx::result r = txn.exec_prepared(
            kFencedUpdatesOutcome, env, scope_.fences->holder(), mine, no_flush_wait, TextArray(ids),
            TextArray(states), TextArray(records), TextArray(has_app), TextArray(m_app), TextArray(m_env),
            TextArray(m_target), TextArray(m_sync), TextArray(m_live), TextArray(ekey), TextArray(ev),
            TextArray(sseq), TextArray(srec), TextArray(skey), TextArray(sev));
        const absl::Status fenced = JudgeFenceRow(r, env, mine);
        if (!fenced.ok()) return std::vector<absl::Status>(group.size(), fenced);
        std::vector<std::string> updated_list = r[0][2].is_null() ? std::vector<std::string>()
                                                                   : postgres::ParseTextArray(r[0][2]);
        const std::set<std::string> updated(updated_list.begin(), updated_list.end());
        std::vector<absl::Status> out;
        int64_t rows = 0, apps = 0, steps = 0;
        std::set<std::string> channels;
        for (const FencedUpdate* w : group) {
          if (updated.count(w->id) == 0) {
            out.push_back(absl::NotFoundError(absl::StrCat("deployment ", w->id, " not found")));
            continue;
          }
          out.push_back(absl::OkStatus());
          for (const std::optional<outbox::OutboxStore::Row>* row : {&w->event, &w->step_event}) {
            if (!row->has_value()) continue;
            ++rows;
            channels.insert((*row)->channel);
          }
          apps += w->app.has_value() ? 1 : 0;
          steps += w->step_sequence > 0 ? 1 : 0;
        }
        if (r[0][3].as<int64_t>() > 0) {
          for (const std::string& channel : channels) pool_->WakeAfterCommit(channel);
        }
        if (r[0][3].as<int64_t>() != rows || r[0][4].as<int64_t>() != apps || r[0][5].as<int64_t>() != steps) {
          // Committed (one statement) but not as asked: say so for each.
          for (absl::Status& s : out) {
            if (s.ok()) s = absl::InternalError("deployment not recorded whole although the fence held");
          }
        }
        return out;
      });
}

std::vector<absl::Status> PostgresDeploymentStore::WriteFencedUpdates(std::vector<FencedUpdate*>& batch) {
  return WriteByEnvironment<FencedUpdate>(
      batch, [this](const std::vector<FencedUpdate*>& group) { return WriteFencedUpdatesTogether(group); },
      [this](const FencedUpdate& w) { return WriteFencedUpdate(w); }, fenced_writes_together_,
      [this](size_t calls, const absl::Status& error) { SharedStatementFailed(kFencedUpdatesOutcome, calls, error); });
}

absl::Status PostgresDeploymentStore::WriteFencedSteps(const FencedSteps& w) {
  const AppliedChange& c = w.change;
  const outbox::OutboxStore::Row no_event;
  const outbox::OutboxStore::Row& e = w.event.has_value() ? *w.event : no_event;
  const int64_t steps = w.second_sequence > 0 ? 2 : 1;
  return pool_->RunStatement([&](pqxx::transaction_base& txn) -> absl::Status {
    pqxx::result r = txn.exec_prepared(kFencedStepOutcome, w.deployment_id, w.first_sequence,
                                       pqxx::binarystring(w.first_record), w.env, scope_.fences->holder(), w.mine,
                                       w.kind, c.application_id, c.environment_id, w.change_key,
                                       pqxx::binarystring(w.change_ref), c.object.json, c.object.source_path,
                                       c.object.wave, c.deployment_id, e.idempotency_key, pqxx::binarystring(e.event),
                                       w.second_sequence, pqxx::binarystring(w.second_record));
    if (absl::Status fenced = JudgeFenceRow(r, w.env, w.mine); !fenced.ok()) return fenced;
    if (r[0][3].as<int64_t>() > 0) pool_->WakeAfterCommit(e.channel);
    if (r[0][2].as<int64_t>() != steps || r[0][3].as<int64_t>() != (w.event.has_value() ? 1 : 0) ||
        (w.kind == 1 && r[0][4].as<int64_t>() != 1)) {
      return absl::InternalError("step not recorded whole although the fence held");
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<absl::Status>> PostgresDeploymentStore::WriteFencedStepsTogether(
    const std::vector<FencedSteps*>& group) {
  const std::string& env = group.front()->env;
  const int64_t mine = group.front()->mine;
  std::vector<std::string> ids, seq1, rec1, seq2, rec2, kinds, c_app, c_env, c_key, c_ref, c_json, c_source, c_wave,
      c_dep, ekey, ev;
  int64_t steps = 0, rows = 0, upserts = 0;
  std::set<std::string> channels;
  for (const FencedSteps* w : group) {
    ids.push_back(w->deployment_id);
    seq1.push_back(absl::StrCat(w->first_sequence));
    rec1.push_back(Base64(w->first_record));
    seq2.push_back(absl::StrCat(w->second_sequence));
    rec2.push_back(Base64(w->second_record));
    kinds.push_back(absl::StrCat(w->kind));
    c_app.push_back(w->change.application_id);
    c_env.push_back(w->change.environment_id);
    c_key.push_back(w->change_key);
    c_ref.push_back(Base64(w->change_ref));
    c_json.push_back(w->change.object.json);
    c_source.push_back(w->change.object.source_path);
    c_wave.push_back(absl::StrCat(w->change.object.wave));
    c_dep.push_back(w->change.deployment_id);
    ekey.push_back(w->event.has_value() ? w->event->idempotency_key : "");
    ev.push_back(w->event.has_value() ? Base64(w->event->event) : "");
    steps += w->second_sequence > 0 ? 2 : 1;
    upserts += w->kind == 1 ? 1 : 0;
    if (w->event.has_value()) {
      ++rows;
      channels.insert(w->event->channel);
    }
  }
  using postgres::TextArray;
  return pool_->RunStatementWithResult<std::vector<absl::Status>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::vector<absl::Status>> {
        pqxx::result r = txn.exec_prepared(
            kFencedStepsOutcome, env, scope_.fences->holder(), mine, TextArray(ids), TextArray(seq1), TextArray(rec1),
            TextArray(seq2), TextArray(rec2), TextArray(kinds), TextArray(c_app), TextArray(c_env), TextArray(c_key),
            TextArray(c_ref), TextArray(c_json), TextArray(c_source), TextArray(c_wave), TextArray(c_dep),
            TextArray(ekey), TextArray(ev));
        const absl::Status fenced = JudgeFenceRow(r, env, mine);
        if (!fenced.ok()) return std::vector<absl::Status>(group.size(), fenced);
        if (r[0][3].as<int64_t>() > 0) {
          for (const std::string& channel : channels) pool_->WakeAfterCommit(channel);
        }
        if (r[0][2].as<int64_t>() != steps || r[0][3].as<int64_t>() != rows || r[0][4].as<int64_t>() != upserts) {
          return std::vector<absl::Status>(group.size(),
                                           absl::InternalError("step not recorded whole although the fence held"));
        }
        return std::vector<absl::Status>(group.size(), absl::OkStatus());
      });
}

std::vector<absl::Status> PostgresDeploymentStore::WriteFencedSteps(std::vector<FencedSteps*>& batch) {
  return WriteByEnvironment<FencedSteps>(
      batch, [this](const std::vector<FencedSteps*>& group) { return WriteFencedStepsTogether(group); },
      [this](const FencedSteps& w) { return WriteFencedSteps(w); }, fenced_writes_together_,
      [this](size_t calls, const absl::Status& error) { SharedStatementFailed(kFencedStepsOutcome, calls, error); });
}

absl::Status PostgresDeploymentStore::WriteStep(pqxx::work& txn, const std::string& deployment_id,
                                                const StepWrite& w) {
  txn.exec_prepared0(kUpsertStep, deployment_id, w.step.sequence(), Bytes(w.step));
  if (w.change.has_value()) {
    const AppliedChange& change = *w.change;
    std::string key = change.object.key.ToString();
    if (change.deleted) {
      txn.exec_prepared0(kDeleteApplied, change.application_id, change.environment_id, key);
    } else {
      txn.exec_prepared0(kUpsertApplied, change.application_id, change.environment_id, key,
                         Bytes(change.object.key.ToProto()), change.object.json, change.object.source_path,
                         change.object.wave, change.deployment_id);
    }
  }
  return Enqueue(txn, w.events);
}

absl::Status PostgresDeploymentStore::SaveStep(const std::string& deployment_id, const v1::DeploymentStep& step,
                                               const AppliedChange* change, const std::vector<v1::Event>& events) {
  return SaveSteps(deployment_id, {StepWrite{step, change != nullptr ? std::optional<AppliedChange>(*change) : std::nullopt,
                                             events}});
}

absl::Status PostgresDeploymentStore::SaveSteps(const std::string& deployment_id, const std::vector<StepWrite>& steps) {
  if (steps.empty()) return absl::OkStatus();
  // A deployment whose environment this store knows: the fence check and
  // the steps in one statement (kFencedStep, kFencedStepOutcome) when they
  // are one step alone (each step's RUNNING record, half of a
  // deployment's), or one or two steps with at most one applied change and
  // one audit event (a step's outcome and the next step's start), and the
  // outbox lets the statement write the event's row.
  std::optional<std::string> env = scope_.fences != nullptr ? EnvironmentOf(deployment_id) : std::nullopt;
  if (env.has_value()) {
    const int64_t mine = scope_.fences->TokenFor(*env);
    if (mine == 0) return JudgeFence(*env, mine, nullptr, nullptr);
    const StepWrite& first = steps[0];
    if (steps.size() == 1 && !first.change.has_value() && first.events.empty()) {
      return pool_->RunStatement([&](pqxx::transaction_base& txn) -> absl::Status {
        pqxx::result r = txn.exec_prepared(kFencedStep, deployment_id, first.step.sequence(), Bytes(first.step), *env,
                                           scope_.fences->holder(), mine);
        if (r.empty()) return JudgeFence(*env, mine, nullptr, nullptr);
        const pqxx::field holder = r[0][0], token = r[0][1];
        if (absl::Status fenced = JudgeFence(*env, mine, &holder, &token); !fenced.ok()) return fenced;
        if (r[0][2].as<int64_t>() != 1) return absl::InternalError("step not recorded although the fence held");
        return absl::OkStatus();
      });
    }
    const AppliedChange* change = nullptr;
    int changes = 0;
    std::vector<v1::Event> events;
    for (const StepWrite& w : steps) {
      if (w.change.has_value()) {
        change = &*w.change;
        ++changes;
      }
      events.insert(events.end(), w.events.begin(), w.events.end());
    }
    absl::StatusOr<std::optional<outbox::OutboxStore::Row>> one = OneEventRow(events);
    if (!one.ok()) return one.status();
    const std::optional<outbox::OutboxStore::Row>& row = *one;
    if (steps.size() <= 2 && changes <= 1 && (events.empty() || row.has_value())) {
      FencedSteps w;
      w.env = *env;
      w.mine = mine;
      w.deployment_id = deployment_id;
      w.first_sequence = first.step.sequence();
      w.first_record = first.step.SerializeAsString();
      if (steps.size() == 2) {
        w.second_sequence = steps[1].step.sequence();
        w.second_record = steps[1].step.SerializeAsString();
      }
      if (change != nullptr) {
        w.kind = change->deleted ? 2 : 1;
        w.change = *change;
        w.change_key = change->object.key.ToString();
        w.change_ref = change->object.key.ToProto().SerializeAsString();
      }
      w.event = row;
      return fenced_steps_.Run(std::move(w), deployment_id);
    }
  }
  return pool_->RunInTransaction([&](pqxx::work& txn) {
    if (absl::Status fenced = CheckDeploymentFence(txn, deployment_id, /*no_flush_wait=*/true); !fenced.ok()) {
      return fenced;
    }
    for (const StepWrite& w : steps) {
      if (absl::Status s = WriteStep(txn, deployment_id, w); !s.ok()) return s;
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<v1::Deployment> PostgresDeploymentStore::Get(const std::string& id, bool include_steps) {
  auto read = [&](pqxx::transaction_base& txn) -> absl::StatusOr<v1::Deployment> {
    pqxx::result r = txn.exec_prepared(kGetDeployment, id);
    if (r.empty()) return absl::NotFoundError(absl::StrCat("deployment \"", id, "\" not found"));
    absl::StatusOr<v1::Deployment> d = Parse<v1::Deployment>(r[0][0], "deployment");
    if (!d.ok() || !include_steps) return d;
    for (const auto& row : txn.exec_prepared(kGetSteps, id)) {
      absl::StatusOr<v1::DeploymentStep> step = Parse<v1::DeploymentStep>(row[0], "step");
      if (!step.ok()) return step.status();
      *d->add_steps() = std::move(*step);
    }
    return d;
  };
  // The record alone is one statement; with its steps, two that must see
  // one snapshot.
  if (!include_steps) return pool_->RunStatementWithResult<v1::Deployment>(read);
  return pool_->RunInTransactionWithResult<v1::Deployment>([&](pqxx::work& txn) { return read(txn); });
}

absl::StatusOr<RecoveryAttempts> PostgresDeploymentStore::GetRecoveryAttempts(const std::string& id) {
  return pool_->RunStatementWithResult<RecoveryAttempts>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<RecoveryAttempts> {
    pqxx::result r = txn.exec_prepared(kGetAttempts, id);
    if (r.empty()) return absl::NotFoundError(absl::StrCat("deployment \"", id, "\" not found"));
    RecoveryAttempts out;
    out.without_progress = r[0][0].as<int>();
    out.progress_mark = r[0][1].as<int64_t>();
    return out;
  });
}

absl::Status PostgresDeploymentStore::SaveRecoveryAttempts(const std::string& id, const RecoveryAttempts& attempts) {
  return pool_->RunInTransaction([&](pqxx::work& txn) -> absl::Status {
    if (absl::Status fenced = CheckDeploymentFence(txn, id, /*no_flush_wait=*/false); !fenced.ok()) return fenced;
    pqxx::result r = txn.exec_prepared(kSaveAttempts, id, attempts.without_progress, attempts.progress_mark);
    if (r.affected_rows() != 1) return absl::NotFoundError(absl::StrCat("deployment ", id, " not found"));
    return absl::OkStatus();
  });
}

absl::StatusOr<v1::Plan> PostgresDeploymentStore::GetSpec(const std::string& id) {
  return pool_->RunStatementWithResult<v1::Plan>([&](pqxx::transaction_base& txn) -> absl::StatusOr<v1::Plan> {
    pqxx::result r = txn.exec_prepared(kGetSpec, id);
    if (r.empty()) return absl::NotFoundError(absl::StrCat("deployment \"", id, "\" not found"));
    return Parse<v1::Plan>(r[0][0], "deployment spec");
  });
}

absl::StatusOr<std::vector<v1::Deployment>> PostgresDeploymentStore::Records(
    const std::function<pqxx::result(pqxx::transaction_base&)>& run) {
  return pool_->RunStatementWithResult<std::vector<v1::Deployment>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::vector<v1::Deployment>> {
        std::vector<v1::Deployment> out;
        for (const auto& row : run(txn)) {
          absl::StatusOr<v1::Deployment> d = Parse<v1::Deployment>(row[0], "deployment");
          if (!d.ok()) return d.status();
          out.push_back(std::move(*d));
        }
        return out;
      });
}

absl::StatusOr<DeploymentPage> PostgresDeploymentStore::List(const DeploymentFilter& f) {
  std::vector<std::string> states;
  for (v1::DeploymentState s : f.states) states.push_back(absl::StrCat(static_cast<int>(s)));
  std::string state_array = absl::StrCat("{", absl::StrJoin(states, ","), "}");
  auto read = [&](pqxx::transaction_base& txn) -> absl::StatusOr<DeploymentPage> {
    DeploymentPage page;
    pqxx::result r = txn.exec_prepared(kList, f.application_id, f.environment_id, state_array, f.after_seq,
                                       f.page_size + 1);
    for (const auto& row : r) {
      if (static_cast<int>(page.deployments.size()) == f.page_size) break;
      absl::StatusOr<v1::Deployment> d = Parse<v1::Deployment>(row[0], "deployment");
      if (!d.ok()) return d.status();
      page.next_seq = row[1].as<int64_t>();
      if (f.include_steps) {
        for (const auto& srow : txn.exec_prepared(kGetSteps, d->id())) {
          absl::StatusOr<v1::DeploymentStep> step = Parse<v1::DeploymentStep>(srow[0], "step");
          if (!step.ok()) return step.status();
          *d->add_steps() = std::move(*step);
        }
      }
      page.deployments.push_back(std::move(*d));
    }
    if (static_cast<int>(r.size()) <= f.page_size) page.next_seq = 0;
    return page;
  };
  // Without steps one statement; with them, several that must see one snapshot.
  if (!f.include_steps) return pool_->RunStatementWithResult<DeploymentPage>(read);
  return pool_->RunInTransactionWithResult<DeploymentPage>([&](pqxx::work& txn) { return read(txn); });
}

absl::StatusOr<std::vector<v1::Deployment>> PostgresDeploymentStore::Unfinished() {
  return Records([](pqxx::transaction_base& txn) { return txn.exec_prepared(kUnfinished); });
}

absl::StatusOr<std::vector<v1::Deployment>> PostgresDeploymentStore::Succeeded(const std::string& app,
                                                                              const std::string& env) {
  return Records([&](pqxx::transaction_base& txn) { return txn.exec_prepared(kSucceeded, app, env); });
}

absl::StatusOr<std::vector<v1::Deployment>> PostgresDeploymentStore::Unreported() {
  return Records([](pqxx::transaction_base& txn) { return txn.exec_prepared(kUnreported); });
}

absl::Status PostgresDeploymentStore::MarkReported(const std::vector<std::string>& ids) {
  if (ids.empty()) return absl::OkStatus();
  return pool_->RunStatement([&](pqxx::transaction_base& txn) {
    txn.exec_prepared0(kMarkReported, postgres::TextArray(ids));
    return absl::OkStatus();
  });
}

namespace {

// An applied object from the five columns object_ref, manifest, source_path,
// wave, deployment_id starting at `first`.
absl::StatusOr<AppliedObject> AppliedFromRow(const pqxx::row& row, int first) {
  absl::StatusOr<v1::ObjectRef> ref = Parse<v1::ObjectRef>(row[first], "object ref");
  if (!ref.ok()) return ref.status();
  AppliedObject a;
  a.object.key = ObjectKey::FromProto(*ref);
  a.object.json = row[first + 1].as<std::string>();
  a.object.source_path = row[first + 2].as<std::string>();
  a.object.wave = row[first + 3].as<int>();
  a.deployment_id = row[first + 4].as<std::string>();
  return a;
}

}  // namespace

absl::StatusOr<std::vector<AppliedObject>> PostgresDeploymentStore::Applied(const std::string& app,
                                                                           const std::string& env) {
  return pool_->RunStatementWithResult<std::vector<AppliedObject>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::vector<AppliedObject>> {
        std::vector<AppliedObject> out;
        for (const auto& row : txn.exec_prepared(kApplied, app, env)) {
          absl::StatusOr<AppliedObject> a = AppliedFromRow(row, 0);
          if (!a.ok()) return a.status();
          out.push_back(std::move(*a));
        }
        return out;
      });
}

namespace {

absl::StatusOr<ManagedApp> ManagedFromRow(const pqxx::row& row) {
  ManagedApp m;
  m.application_id = row[0].as<std::string>();
  m.environment_id = row[1].as<std::string>();
  absl::StatusOr<v1::DeployTarget> t = Parse<v1::DeployTarget>(row[2], "target");
  if (!t.ok()) return t.status();
  m.target = *t;
  absl::StatusOr<v1::SyncPolicy> p = Parse<v1::SyncPolicy>(row[3], "sync policy");
  if (!p.ok()) return p.status();
  m.sync_policy = *p;
  m.live_deployment_id = row[4].as<std::string>();
  return m;
}

}  // namespace

absl::StatusOr<std::vector<ManagedApp>> PostgresDeploymentStore::ManagedApps() {
  return pool_->RunStatementWithResult<std::vector<ManagedApp>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::vector<ManagedApp>> {
        std::vector<ManagedApp> out;
        for (const auto& row : txn.exec_prepared(kManagedApps)) {
          absl::StatusOr<ManagedApp> m = ManagedFromRow(row);
          if (!m.ok()) return m.status();
          out.push_back(std::move(*m));
        }
        return out;
      });
}

absl::StatusOr<std::optional<ManagedApp>> PostgresDeploymentStore::GetManagedApp(const std::string& app,
                                                                                const std::string& env) {
  return pool_->RunStatementWithResult<std::optional<ManagedApp>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::optional<ManagedApp>> {
        pqxx::result r = txn.exec_prepared(kManagedApp, app, env);
        if (r.empty()) return std::optional<ManagedApp>();
        absl::StatusOr<ManagedApp> m = ManagedFromRow(r[0]);
        if (!m.ok()) return m.status();
        return std::optional<ManagedApp>(std::move(*m));
      });
}

namespace {

// An AppState from its rows of kAppState (or one read's of kAppStates): the
// records' row first, then one per applied object.
absl::StatusOr<DeploymentRecords::AppState> AppStateFromRows(const std::vector<pqxx::row>& rows,
                                                             const std::string& app, const std::string& env) {
  DeploymentRecords::AppState out;
  if (rows.empty()) return absl::InternalError("the application's state was read without its records");
  const pqxx::row& first = rows.front();  // (SELECT 1) LEFT JOIN ...: the records' row, always first
  if (!first[0].is_null()) {
    absl::StatusOr<ManagedApp> m = ManagedFromRow(first);
    if (!m.ok()) return m.status();
    out.managed = std::move(*m);
  }
  if (first[5].is_null()) {
    out.pin.set_application_id(app);
    out.pin.set_environment_id(env);
  } else {
    absl::StatusOr<v1::PinState> pin = Parse<v1::PinState>(first[5], "pin");
    if (!pin.ok()) return pin.status();
    out.pin = std::move(*pin);
  }
  if (!first[6].is_null()) {
    absl::StatusOr<v1::Deployment> d = Parse<v1::Deployment>(first[6], "deployment");
    if (!d.ok()) return d.status();
    out.deployment = std::move(*d);
  }
  if (!first[7].is_null()) {
    absl::StatusOr<v1::Deployment> live = Parse<v1::Deployment>(first[7], "deployment");
    if (live.ok()) out.live = std::move(*live);  // as a failed Get of it: no live revision shown
  }
  out.has_applied = !first[15].is_null() && first[15].as<bool>();
  for (const pqxx::row& row : rows) {
    if (row[8].is_null()) continue;  // no applied object
    absl::StatusOr<AppliedObject> a = AppliedFromRow(row, 8);
    if (!a.ok()) return a.status();
    out.applied.push_back(std::move(*a));
  }
  return out;
}

}  // namespace

absl::StatusOr<DeploymentRecords::AppState> PostgresDeploymentStore::ReadAppState(const std::string& app,
                                                                                  const std::string& env,
                                                                                  const AppStateRead& what) {
  return app_state_reads_.Run(AppStateQuery{app, env, what}, absl::StrCat(app_state_read_keys_.fetch_add(1)));
}

absl::StatusOr<DeploymentRecords::AppState> PostgresDeploymentStore::ReadAppStateAlone(const AppStateQuery& q) {
  return pool_->RunStatementWithResult<AppState>([&](pqxx::transaction_base& txn) -> absl::StatusOr<AppState> {
    pqxx::result r = txn.exec_prepared(kAppState, q.app, q.env, q.what.deployment_id, q.what.applied, q.what.managed,
                                       q.what.applied_after.value_or(""), static_cast<int64_t>(q.what.applied_limit));
    return AppStateFromRows(std::vector<pqxx::row>(r.begin(), r.end()), q.app, q.env);
  });
}

std::vector<absl::StatusOr<DeploymentRecords::AppState>> PostgresDeploymentStore::ReadAppStates(
    std::vector<AppStateQuery*>& batch) {
  if (batch.size() == 1) return {ReadAppStateAlone(*batch.front())};
  std::vector<std::string> apps, envs, deployments, applied, managed, after, limits;
  for (const AppStateQuery* q : batch) {
    apps.push_back(q->app);
    envs.push_back(q->env);
    deployments.push_back(q->what.deployment_id);
    applied.push_back(q->what.applied ? "t" : "f");
    managed.push_back(q->what.managed ? "t" : "f");
    after.push_back(q->what.applied_after.value_or(""));
    limits.push_back(absl::StrCat(q->what.applied_limit));
  }
  using postgres::TextArray;
  pqxx::result kept;  // the rows refer to it
  absl::Status ran = pool_->RunStatement([&](pqxx::transaction_base& txn) -> absl::Status {
    kept = txn.exec_prepared(kAppStates, TextArray(apps), TextArray(envs), TextArray(deployments), TextArray(applied),
                             TextArray(managed), TextArray(after), TextArray(limits));
    return absl::OkStatus();
  });
  std::vector<absl::StatusOr<AppState>> out;
  if (!ran.ok()) {
    // The shared statement failed: each read alone, for its own answer.
    SharedStatementFailed(kAppStates, batch.size(), ran);
    for (const AppStateQuery* q : batch) out.push_back(ReadAppStateAlone(*q));
    return out;
  }
  app_state_reads_together_.fetch_add(batch.size());
  std::vector<std::vector<pqxx::row>> rows(batch.size());
  for (const pqxx::row& row : kept) {
    const int64_t n = row[16].as<int64_t>();
    if (n >= 1 && static_cast<size_t>(n) <= batch.size()) rows[n - 1].push_back(row);
  }
  for (size_t i = 0; i < batch.size(); ++i) out.push_back(AppStateFromRows(rows[i], batch[i]->app, batch[i]->env));
  return out;
}

absl::StatusOr<DriftStore::DriftCheckInputs> PostgresDeploymentStore::ReadDriftCheckInputs(const std::string& app,
                                                                                          const std::string& env) {
  return pool_->RunStatementWithResult<DriftCheckInputs>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<DriftCheckInputs> {
        DriftCheckInputs out;
        pqxx::result r = txn.exec_prepared(kDriftCheckInputs, app, env);
        if (r.empty()) return out;
        absl::StatusOr<ManagedApp> m = ManagedFromRow(r[0]);
        if (!m.ok()) return m.status();
        out.app = std::move(*m);
        if (!r[0][5].is_null()) {
          absl::StatusOr<v1::DriftSettings> own = Parse<v1::DriftSettings>(r[0][5], "drift settings");
          if (!own.ok()) return own.status();
          out.own = std::move(*own);
        }
        for (const auto& row : r) {
          if (row[6].is_null()) continue;  // no applied object
          absl::StatusOr<AppliedObject> a = AppliedFromRow(row, 6);
          if (!a.ok()) return a.status();
          out.applied.push_back(std::move(*a));
        }
        return out;
      });
}

absl::StatusOr<std::vector<DriftStore::DriftCheckInputs>> PostgresDeploymentStore::ReadDriftCheckInputsOf(
    const std::vector<std::pair<std::string, std::string>>& apps) {
  std::vector<DriftCheckInputs> out;
  if (apps.empty()) return out;
  std::vector<std::string> app_ids, env_ids;
  for (const auto& [app, env] : apps) {
    app_ids.push_back(app);
    env_ids.push_back(env);
  }
  return pool_->RunStatementWithResult<std::vector<DriftCheckInputs>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::vector<DriftCheckInputs>> {
        pqxx::result r =
            txn.exec_prepared(kDriftCheckInputsOf, postgres::TextArray(app_ids), postgres::TextArray(env_ids));
        for (const auto& row : r) {
          const bool same = !out.empty() && out.back().app->application_id == row[0].c_str() &&
                            out.back().app->environment_id == row[1].c_str();
          if (!same) {
            absl::StatusOr<ManagedApp> m = ManagedFromRow(row);
            if (!m.ok()) return m.status();
            DriftCheckInputs next;
            next.app = std::move(*m);
            if (!row[5].is_null()) {
              absl::StatusOr<v1::DriftSettings> own = Parse<v1::DriftSettings>(row[5], "drift settings");
              if (!own.ok()) return own.status();
              next.own = std::move(*own);
            }
            out.push_back(std::move(next));
          }
          if (row[6].is_null()) continue;  // no applied object
          absl::StatusOr<AppliedObject> a = AppliedFromRow(row, 6);
          if (!a.ok()) return a.status();
          out.back().applied.push_back(std::move(*a));
        }
        return out;
      });
}

absl::StatusOr<v1::PinState> PostgresDeploymentStore::GetPin(const std::string& app, const std::string& env) {
  return pool_->RunStatementWithResult<v1::PinState>([&](pqxx::transaction_base& txn) -> absl::StatusOr<v1::PinState> {
    pqxx::result r = txn.exec_prepared(kGetPin, app, env);
    if (r.empty()) {
      v1::PinState none;
      none.set_application_id(app);
      none.set_environment_id(env);
      return none;
    }
    return Parse<v1::PinState>(r[0][0], "pin");
  });
}

absl::Status PostgresDeploymentStore::SavePin(const v1::PinState& pin, const std::vector<v1::Event>& events) {
  return pool_->RunInTransaction([&](pqxx::work& txn) {
    txn.exec_prepared0(kUpsertPin, pin.application_id(), pin.environment_id(), pin.pinned(), Bytes(pin));
    return Enqueue(txn, events);
  });
}

absl::StatusOr<int64_t> PostgresDeploymentStore::RecordDrift(const std::string& app, const std::string& env,
                                                             const std::string& key, v1::DriftStatus drift,
                                                             const std::string& message,
                                                             const std::vector<v1::Event>& events) {
  return pool_->RunInTransactionWithResult<int64_t>([&](pqxx::work& txn) -> absl::StatusOr<int64_t> {
    if (absl::Status fenced = CheckFence(txn, env, /*no_flush_wait=*/false); !fenced.ok()) return fenced;
    int64_t id = txn.exec_prepared1(kInsertDrift, app, env, key, static_cast<int>(drift), message)[0].as<int64_t>();
    absl::Status s = Enqueue(txn, events);
    if (!s.ok()) return s;
    return id;
  });
}

absl::Status PostgresDeploymentStore::MarkDriftHealed(const std::vector<int64_t>& ids, const std::string& deployment_id,
                                                      const std::vector<v1::Event>& events) {
  return pool_->RunInTransaction([&](pqxx::work& txn) -> absl::Status {
    const std::string array = absl::StrCat("{", absl::StrJoin(ids, ","), "}");
    if (scope_.fences != nullptr) {
      for (const pqxx::row& row : txn.exec_prepared(kDriftEnvs, array)) {
        if (absl::Status fenced = CheckFence(txn, row[0].as<std::string>(), /*no_flush_wait=*/false); !fenced.ok()) {
          return fenced;
        }
      }
    }
    txn.exec_prepared0(kHealDrift, array, deployment_id);
    return Enqueue(txn, events);
  });
}

absl::StatusOr<v1::DriftSettings> PostgresDeploymentStore::GetDriftSettings(const std::string& app,
                                                                           const std::string& env) {
  return pool_->RunStatementWithResult<v1::DriftSettings>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<v1::DriftSettings> {
        pqxx::result r = txn.exec_prepared(kGetDriftSettings, app, env);
        if (r.empty()) return absl::NotFoundError("no drift settings stored");
        return Parse<v1::DriftSettings>(r[0][0], "drift settings");
      });
}

absl::Status PostgresDeploymentStore::SaveDriftSettings(const v1::DriftSettings& s) {
  return pool_->RunStatement([&](pqxx::transaction_base& txn) {
    txn.exec_prepared0(kUpsertDriftSettings, s.application_id(), s.environment_id(), Bytes(s));
    return absl::OkStatus();
  });
}

absl::StatusOr<std::unique_ptr<AppLock>> PostgresDeploymentStore::TryLock(const std::string& app,
                                                                         const std::string& env) {
  // An idle session from an earlier lock first; if it broke meanwhile (the
  // server restarted), once more on a new one.
  std::unique_ptr<pqxx::connection> conn = lock_sessions_->Take();
  while (true) {
    bool reused = conn != nullptr;
    if (!reused) {
      absl::StatusOr<std::unique_ptr<pqxx::connection>> fresh = pool_->OpenDedicated();
      if (!fresh.ok()) return fresh.status();
      conn = std::move(*fresh);
    }
    try {
      bool got = false;
      {
        pqxx::nontransaction tx(*conn);
        got = tx.exec_params1(kTryLock, absl::StrCat(app, "/", env))[0].as<bool>();
      }
      if (!got) {
        lock_sessions_->Return(std::move(conn));
        return std::unique_ptr<AppLock>();
      }
      return std::unique_ptr<AppLock>(std::make_unique<PostgresAppLock>(std::move(conn), lock_sessions_));
    } catch (const std::exception& e) {
      conn.reset();
      if (!reused) return postgres::StatusFromException(e, "lock application");
    }
  }
}

absl::StatusOr<std::string> PostgresDeploymentStore::GetCursor() {
  return pool_->RunStatementWithResult<std::string>([&](pqxx::transaction_base& txn) -> absl::StatusOr<std::string> {
    pqxx::result r = txn.exec_prepared(kGetCursor, scope_.deployer_group);
    return r.empty() ? std::string() : r[0][0].as<std::string>();
  });
}

absl::Status PostgresDeploymentStore::SaveCursor(const std::string& cursor) {
  return pool_->RunStatement([&](pqxx::transaction_base& txn) {
    txn.exec_prepared0(kUpsertCursor, scope_.deployer_group, cursor);
    return absl::OkStatus();
  });
}

}  // namespace ferry::deployer
