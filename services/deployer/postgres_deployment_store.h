#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/concurrency/batcher.h"
#include "common/concurrency/mutex.h"
#include "common/outbox/outbox_store.h"
#include "common/postgres/connection_pool.h"
#include "services/deployer/deployment_store.h"
#include "services/deployer/lease_store.h"

namespace ferry::deployer {

// Open sessions for advisory locks that hold no lock, kept between locks so
// that taking one costs a round trip rather than a new connection. A session
// comes back only after pg_advisory_unlock_all succeeded on it (or a try
// failed). Thread-safe.
class LockSessions {
 public:
  explicit LockSessions(size_t max_idle) : max_idle_(max_idle) {}
  // An idle session, or null when there is none.
  std::unique_ptr<pqxx::connection> Take();
  // Keeps `conn` for Take(), or closes it when `max_idle` are kept already.
  void Return(std::unique_ptr<pqxx::connection> conn);

 private:
  const size_t max_idle_;
  ferry::Mutex mu_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_ ABSL_GUARDED_BY(mu_);
};

// DeploymentStore on the `deployer` schema. Holds every SQL statement of
// the deployer. Audit events go through `outbox` in the same transaction as
// the change they describe. The per-application lock is a PostgreSQL session
// advisory lock on a dedicated connection, so it is released when its holder
// dies, whichever replica that was; released sessions are reused for the
// next lock (LockSessions). Thread-safe.
// Which replica a store serves (several deployers share one schema).
struct DeploymentStoreScope {
  // Whose plan cursor GetCursor/SaveCursor move (one per deployer group).
  std::string deployer_group = "default";
  // When set (replicas, wired in main.cc), every write of deployment state
  // (Update, SaveStep, SaveRecoveryAttempts, RecordDrift, MarkDriftHealed)
  // checks in its transaction that this replica still holds the
  // environment's lease with its token (the row read FOR SHARE, so a
  // takeover waits for the write or the write sees the takeover); otherwise
  // ABORTED and nothing is written. Create is not fenced: any replica of the
  // group records a plan it takes, the lease holder runs it.
  const LeaseFences* fences = nullptr;
};

class PostgresDeploymentStore final : public DeploymentStore {
 public:
  PostgresDeploymentStore(postgres::ConnectionPool* pool, outbox::OutboxStore* outbox,
                          DeploymentStoreScope scope = {});

  absl::Status Create(const v1::Deployment& deployment, const v1::Plan& spec,
                      const std::vector<v1::Event>& events) override;
  absl::Status Update(const v1::Deployment& deployment, const std::vector<v1::Event>& events, const ManagedApp* app,
                      const v1::PinState* pin) override;
  absl::Status SaveStep(const std::string& deployment_id, const v1::DeploymentStep& step, const AppliedChange* change,
                        const std::vector<v1::Event>& events) override;
  absl::Status SaveSteps(const std::string& deployment_id, const std::vector<StepWrite>& steps) override;
  absl::Status SaveStepsThenUpdate(const std::vector<StepWrite>& steps, const v1::Deployment& deployment,
                                   const std::vector<v1::Event>& events, const ManagedApp* app,
                                   const v1::PinState* pin) override;
  absl::StatusOr<RecoveryAttempts> GetRecoveryAttempts(const std::string& id) override;
  absl::Status SaveRecoveryAttempts(const std::string& id, const RecoveryAttempts& attempts) override;
  absl::StatusOr<v1::Deployment> Get(const std::string& id, bool include_steps) override;
  absl::StatusOr<v1::Plan> GetSpec(const std::string& id) override;
  absl::StatusOr<DeploymentPage> List(const DeploymentFilter& filter) override;
  absl::StatusOr<std::vector<v1::Deployment>> Unfinished() override;
  absl::StatusOr<std::vector<v1::Deployment>> Succeeded(const std::string& app, const std::string& env) override;
  absl::StatusOr<std::vector<v1::Deployment>> Unreported() override;
  absl::Status MarkReported(const std::vector<std::string>& ids) override;
  absl::StatusOr<std::vector<AppliedObject>> Applied(const std::string& app, const std::string& env) override;
  absl::StatusOr<std::vector<ManagedApp>> ManagedApps() override;
  absl::StatusOr<std::optional<ManagedApp>> GetManagedApp(const std::string& app, const std::string& env) override;
  absl::StatusOr<AppState> ReadAppState(const std::string& app, const std::string& env,
                                        const AppStateRead& what) override;
  absl::StatusOr<v1::PinState> GetPin(const std::string& app, const std::string& env) override;
  absl::Status SavePin(const v1::PinState& pin, const std::vector<v1::Event>& events) override;
  absl::StatusOr<int64_t> RecordDrift(const std::string& app, const std::string& env, const std::string& key,
                                      v1::DriftStatus drift, const std::string& message,
                                      const std::vector<v1::Event>& events) override;
  absl::Status MarkDriftHealed(const std::vector<int64_t>& ids, const std::string& deployment_id,
                                       const std::vector<v1::Event>& events) override;
  absl::StatusOr<v1::DriftSettings> GetDriftSettings(const std::string& app, const std::string& env) override;
  absl::StatusOr<DriftCheckInputs> ReadDriftCheckInputs(const std::string& app, const std::string& env) override;
  absl::StatusOr<std::vector<DriftCheckInputs>> ReadDriftCheckInputsOf(
      const std::vector<std::pair<std::string, std::string>>& apps) override;
  absl::Status SaveDriftSettings(const v1::DriftSettings& settings) override;
  absl::StatusOr<std::unique_ptr<AppLock>> TryLock(const std::string& app, const std::string& env) override;
  absl::StatusOr<std::string> GetCursor() override;
  absl::Status SaveCursor(const std::string& cursor) override;

  // Fenced writes whose statement wrote (or refused) others' too, and
  // ReadAppState calls answered by a statement that answered others too
  // (for tests).
  uint64_t fenced_writes_together() const { return fenced_writes_together_.load(); }
  uint64_t app_state_reads_together() const { return app_state_reads_together_.load(); }
  uint64_t creates_together() const { return creates_together_.load(); }
  // Shared statements that failed whole, after which each of their calls
  // ran alone for its own answer; each is also logged as a warning, with
  // its error (for tests and operators: one that always fails costs a
  // statement per call more, and shows nowhere else).
  uint64_t shared_statements_failed() const { return shared_statements_failed_.load(); }

 private:
  // Counts and logs a shared statement (`statement`, for `calls` calls)
  // that failed whole with `error`.
  void SharedStatementFailed(std::string_view statement, size_t calls, const absl::Status& error);
  // The parameters of one kFencedUpdateOutcome (a deployment's record with
  // its managed application, a step before it and their outbox rows).
  struct FencedUpdate {
    std::string env;
    int64_t mine = 0;  // this replica's token in env
    std::string id;
    int state = 0;
    std::string record;  // serialized, without its steps
    bool no_flush_wait = false;
    std::optional<ManagedApp> app;
    std::optional<outbox::OutboxStore::Row> event;
    int64_t step_sequence = 0;  // 0: no step
    std::string step_record;
    std::optional<outbox::OutboxStore::Row> step_event;
  };
  // The parameters of one kFencedStepOutcome (one or two steps, at most one
  // applied change, at most one outbox row).
  struct FencedSteps {
    std::string env;
    int64_t mine = 0;
    std::string deployment_id;
    int64_t first_sequence = 0;
    std::string first_record;
    int64_t second_sequence = 0;  // 0: one step
    std::string second_record;
    int kind = 0;  // 0 no applied change, 1 an upsert, 2 a deletion
    AppliedChange change;
    std::string change_key, change_ref;  // ObjectKey::ToString(), its serialized ObjectRef
    std::optional<outbox::OutboxStore::Row> event;
  };
  // Issue #23: the fenced writes of concurrently running deployments share
  // one statement (concurrency::Batcher) when they arrive while another of
  // their kind runs; a write alone runs at once, in its single-request
  // statement. How much is shared depends on the arrivals: in the
  // 10,000-application commit 21,608 of the 40,000 fenced writes still went
  // alone, since a deployment's writes are apart by its file writes.
  std::vector<absl::Status> WriteFencedUpdates(std::vector<FencedUpdate*>& batch);
  std::vector<absl::Status> WriteFencedSteps(std::vector<FencedSteps*>& batch);
  absl::Status WriteFencedUpdate(const FencedUpdate& w);
  absl::Status WriteFencedSteps(const FencedSteps& w);
  // Several requests of one environment (and token) in one statement; a
  // non-OK status when the statement itself failed (its requests are then
  // written one by one).
  absl::StatusOr<std::vector<absl::Status>> WriteFencedUpdatesTogether(const std::vector<FencedUpdate*>& group);
  absl::StatusOr<std::vector<absl::Status>> WriteFencedStepsTogether(const std::vector<FencedSteps*>& group);

  // One Create without events. Concurrent ones (the plan intake's hand-offs)
  // share one statement (issue #23); one alone, or with a spec over
  // kMaxBatchedSpecBytes, is its own.
  struct NewDeployment {
    const v1::Deployment* deployment;
    const v1::Plan* spec;
  };
  std::vector<absl::Status> CreateAll(std::vector<NewDeployment*>& batch);
  absl::Status CreateAlone(const v1::Deployment& d, const v1::Plan& spec, const std::vector<v1::Event>& events);
  // One ReadAppState call. Concurrent calls (the plan intake's, the
  // deployments' starts and the planner's live-state observations) share
  // one statement (issue #23); a call alone runs kAppState at once.
  struct AppStateQuery {
    std::string app;
    std::string env;
    AppStateRead what;
  };
  std::vector<absl::StatusOr<AppState>> ReadAppStates(std::vector<AppStateQuery*>& batch);
  absl::StatusOr<AppState> ReadAppStateAlone(const AppStateQuery& q);

  static void CommitWithoutWaitingForFlush(pqxx::work& txn);
  absl::Status Enqueue(pqxx::work& txn, const std::vector<v1::Event>& events);
  // The fencing check of a write to `env` (see DeploymentStoreScope::fences);
  // with `no_flush_wait`, the transaction also commits without waiting for
  // its flush (CommitWithoutWaitingForFlush), set by the same statement.
  absl::Status CheckFence(pqxx::work& txn, const std::string& env, bool no_flush_wait);
  // The same for a write to deployment `id`'s environment, found through
  // the deployment in the same statement.
  absl::Status CheckDeploymentFence(pqxx::work& txn, const std::string& id, bool no_flush_wait);
  // The verdict on the lease row read for `env` (holder and token; null
  // when there is no row).
  absl::Status JudgeFence(const std::string& env, const pqxx::field* holder, const pqxx::field* token);
  // The same against the token `mine` this replica holds there (0: none).
  absl::Status JudgeFence(const std::string& env, int64_t mine, const pqxx::field* holder, const pqxx::field* token);
  // The same for a fenced statement's result, whose first row (none: no
  // lease row) starts with the holder and the token.
  absl::Status JudgeFenceRow(const pqxx::result& r, const std::string& env, int64_t mine);
  // The environment of a deployment this store created or looked up (a
  // deployment never changes environment); nullopt when it does not know.
  // The outbox row of a single event (see the .cc); nullopt otherwise.
  absl::StatusOr<std::optional<outbox::OutboxStore::Row>> OneEventRow(const std::vector<v1::Event>& events);
  // A step, its applied change and its events, in `txn`.
  absl::Status WriteStep(pqxx::work& txn, const std::string& deployment_id, const StepWrite& w);
  void RememberEnvironment(const std::string& id, const std::string& env);
  std::optional<std::string> EnvironmentOf(const std::string& id);
  absl::StatusOr<std::vector<v1::Deployment>> Records(
      const std::function<pqxx::result(pqxx::transaction_base&)>& run);

  postgres::ConnectionPool* pool_;
  outbox::OutboxStore* outbox_;
  const DeploymentStoreScope scope_;
  std::shared_ptr<LockSessions> lock_sessions_;  // Shared with the locks, which may outlive a call.
  ferry::Mutex envs_mu_;
  std::unordered_map<std::string, std::string> env_of_ ABSL_GUARDED_BY(envs_mu_);
  std::atomic<uint64_t> fenced_writes_together_{0};
  std::atomic<uint64_t> creates_together_{0};
  std::atomic<uint64_t> app_state_reads_together_{0};
  std::atomic<uint64_t> shared_statements_failed_{0};
  concurrency::Batcher<FencedUpdate, absl::Status> fenced_updates_;
  concurrency::Batcher<FencedSteps, absl::Status> fenced_steps_;
  concurrency::Batcher<NewDeployment, absl::Status> creates_;
  std::atomic<uint64_t> app_state_read_keys_{0};
  concurrency::Batcher<AppStateQuery, absl::StatusOr<AppState>> app_state_reads_;
};

}  // namespace ferry::deployer
