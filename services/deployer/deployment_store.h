#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ferry/v1/audit.pb.h"
#include "ferry/v1/deployer.pb.h"
#include "ferry/v1/planner.pb.h"
#include "services/deployer/target.h"

namespace ferry::deployer {

// An object as last applied to an (application, environment).
struct AppliedObject {
  TargetObject object;
  std::string deployment_id;
};

// A change to the applied state, saved with the step that caused it.
struct AppliedChange {
  std::string application_id;
  std::string environment_id;
  TargetObject object;
  bool deleted = false;
  std::string deployment_id;
};

// An (application, environment) the deployer manages.
struct ManagedApp {
  std::string application_id;
  std::string environment_id;
  v1::DeployTarget target;
  v1::SyncPolicy sync_policy;
  std::string live_deployment_id;  // Last successful deployment; empty keeps the stored one.
};

struct DeploymentFilter {
  std::string application_id;
  std::string environment_id;
  std::vector<v1::DeploymentState> states;
  bool include_steps = false;
  int page_size = 50;
  int64_t after_seq = 0;  // Page token: list deployments older than this sequence; 0 = newest.
};

// How often an unfinished deployment was taken up without making progress,
// kept so that one that kills its deployer every time is quarantined rather
// than recovered forever.
struct RecoveryAttempts {
  // Attempts in a row (the first run counts) that ended without finishing
  // and without completing a step.
  int without_progress = 0;
  // Steps completed when the last attempt began; -1 when that attempt was
  // ended by a deliberate stop (then the next attempt never counts).
  int64_t progress_mark = 0;
};

struct DeploymentPage {
  std::vector<v1::Deployment> deployments;
  int64_t next_seq = 0;  // 0 on the last page.
};

// Held while alive: the exclusive right to deploy one (application,
// environment), across every deployer replica.
class AppLock {
 public:
  virtual ~AppLock() = default;
};

// Storage of the deployer, in one small interface per concern so that each
// component names (and a test fakes) only what it uses. DeploymentStore
// below is all of them; PostgresDeploymentStore implements it.
// Every mutation that is audited takes its audit events and writes them to
// the outbox in the same transaction. Implementations are thread-safe.
// Errors: UNAVAILABLE (database unreachable; retry), NOT_FOUND, ALREADY_EXISTS,
// INTERNAL.

// Deployments, their steps and the applied state the steps change.
class DeploymentRecords {
 public:
  virtual ~DeploymentRecords() = default;

  // Records a new deployment with the plan it executes. ALREADY_EXISTS when
  // the id is taken.
  virtual absl::Status Create(const v1::Deployment& deployment, const v1::Plan& spec,
                              const std::vector<v1::Event>& events) = 0;
  // Saves the deployment record (without steps); with `app`, also records the
  // application as managed (and live at this deployment when its
  // live_deployment_id is set); with `pin`, saves the pin.
  virtual absl::Status Update(const v1::Deployment& deployment, const std::vector<v1::Event>& events,
                              const ManagedApp* app = nullptr, const v1::PinState* pin = nullptr) = 0;
  // Inserts or replaces a step (by sequence), applying `change` to the
  // applied state in the same transaction. A health-check step (no change)
  // may be committed without waiting for its flush: it is durable once the
  // next step or deployment update is.
  virtual absl::Status SaveStep(const std::string& deployment_id, const v1::DeploymentStep& step,
                                const AppliedChange* change, const std::vector<v1::Event>& events) = 0;

  // A step to save, with what it changed in the applied state and its audit
  // events (as SaveStep's arguments).
  struct StepWrite {
    v1::DeploymentStep step;
    std::optional<AppliedChange> change;
    std::vector<v1::Event> events;
  };
  // Saves `steps` in order, in one transaction: all or none (issue #23: a
  // step's outcome goes with the next step's start, one write where there
  // were two). Each as SaveStep saves it, without waiting for its flush.
  virtual absl::Status SaveSteps(const std::string& deployment_id, const std::vector<StepWrite>& steps) = 0;
  // Saves `steps` as SaveSteps, then the deployment as Update, in one
  // transaction (a deployment's last step goes with its end).
  virtual absl::Status SaveStepsThenUpdate(const std::vector<StepWrite>& steps, const v1::Deployment& deployment,
                                           const std::vector<v1::Event>& events, const ManagedApp* app,
                                           const v1::PinState* pin) = 0;
  // The recovery attempts of a deployment; zero values when none recorded.
  // NOT_FOUND when there is no such deployment.
  virtual absl::StatusOr<RecoveryAttempts> GetRecoveryAttempts(const std::string& id) = 0;
  virtual absl::Status SaveRecoveryAttempts(const std::string& id, const RecoveryAttempts& attempts) = 0;

  virtual absl::StatusOr<v1::Deployment> Get(const std::string& id, bool include_steps) = 0;
  virtual absl::StatusOr<v1::Plan> GetSpec(const std::string& id) = 0;
  virtual absl::StatusOr<DeploymentPage> List(const DeploymentFilter& filter) = 0;
  // PENDING and RUNNING deployments, oldest first.
  virtual absl::StatusOr<std::vector<v1::Deployment>> Unfinished() = 0;
  // Latest SUCCEEDED deployments of an (application, environment), newest first.
  virtual absl::StatusOr<std::vector<v1::Deployment>> Succeeded(const std::string& app, const std::string& env) = 0;

  virtual absl::StatusOr<std::vector<AppliedObject>> Applied(const std::string& app, const std::string& env) = 0;
  virtual absl::StatusOr<std::vector<ManagedApp>> ManagedApps() = 0;
  virtual absl::StatusOr<std::optional<ManagedApp>> GetManagedApp(const std::string& app, const std::string& env) = 0;

  // What a deployment's hand-off, its run and a live-state observation read
  // of one (application, environment), in one read rather than one each
  // (issue #23: two to four reads per application of a commit touching
  // 10,000). Each part is as its own read answers it: `deployment` as
  // Get(deployment_id, false) (nullopt when not recorded, or not asked),
  // `pin` as GetPin, `applied` as Applied (when asked), `managed` as
  // GetManagedApp (when asked) and `live` as Get(managed->live_deployment_id,
  // false) (nullopt when there is none).
  //
  // A page of the applied objects (a live-state observation's): with
  // `applied_after`, only objects whose key (ObjectKey::ToString()) is
  // greater, compared as bytes; with `applied_limit` > 0, at most that many,
  // the first in that order. Without them all are read (every live-state
  // page of bench/bigplan's application read all 20,000 before these).
  struct AppStateRead {
    std::string deployment_id;  // empty: none read
    bool applied = false;
    bool managed = false;
    std::optional<std::string> applied_after;
    int applied_limit = 0;
  };
  struct AppState {
    std::optional<v1::Deployment> deployment;
    v1::PinState pin;
    std::vector<AppliedObject> applied;
    bool has_applied = false;  // any applied object at all, in or out of the page (when `applied` was asked)
    std::optional<ManagedApp> managed;
    std::optional<v1::Deployment> live;
  };
  virtual absl::StatusOr<AppState> ReadAppState(const std::string& app, const std::string& env,
                                                const AppStateRead& what) = 0;
};

// Which terminal outcomes the planner has been told of.
class OutcomeLedger {
 public:
  virtual ~OutcomeLedger() = default;
  // Terminal deployments with a plan whose outcome the planner has not
  // acknowledged, excluding those whose application has a deployment still
  // running (a rollback may change their outcome).
  virtual absl::StatusOr<std::vector<v1::Deployment>> Unreported() = 0;
  // Marks the deployments `ids` reported, in one write (a reporting pass
  // marks what it reported at its end: issue #23).
  virtual absl::Status MarkReported(const std::vector<std::string>& ids) = 0;
};

// Pins of (application, environment)s.
class PinStore {
 public:
  virtual ~PinStore() = default;
  // The pin of an (application, environment); pinned = false when none.
  virtual absl::StatusOr<v1::PinState> GetPin(const std::string& app, const std::string& env) = 0;
  virtual absl::Status SavePin(const v1::PinState& pin, const std::vector<v1::Event>& events) = 0;
};

// Drift records and drift settings.
class DriftStore {
 public:
  virtual ~DriftStore() = default;
  // Records a detected drift; returns its id.
  virtual absl::StatusOr<int64_t> RecordDrift(const std::string& app, const std::string& env, const std::string& key,
                                              v1::DriftStatus drift, const std::string& message,
                                              const std::vector<v1::Event>& events) = 0;
  virtual absl::Status MarkDriftHealed(const std::vector<int64_t>& ids, const std::string& deployment_id,
                                       const std::vector<v1::Event>& events) = 0;

  // Global defaults when both ids are empty; NOT_FOUND when none stored.
  virtual absl::StatusOr<v1::DriftSettings> GetDriftSettings(const std::string& app, const std::string& env) = 0;

  // What a drift check of (app, env) reads, in one read (issue #23: an idle
  // deployer checks every application each drift interval): its managed
  // record (nullopt when not managed; then nothing else is read), its own
  // drift settings (nullopt when none stored) and its applied objects in
  // wave and key order, as GetManagedApp, GetDriftSettings and Applied.
  struct DriftCheckInputs {
    std::optional<ManagedApp> app;
    std::optional<v1::DriftSettings> own;
    std::vector<AppliedObject> applied;
  };
  virtual absl::StatusOr<DriftCheckInputs> ReadDriftCheckInputs(const std::string& app, const std::string& env) = 0;
  // The same for several (application, environment)s in one read (issue
  // #23: a drift pass reads its due applications together, not one
  // statement each): one entry per managed one, in no particular order
  // (each with `app` set); those not managed have none.
  virtual absl::StatusOr<std::vector<DriftCheckInputs>> ReadDriftCheckInputsOf(
      const std::vector<std::pair<std::string, std::string>>& apps) = 0;
  virtual absl::Status SaveDriftSettings(const v1::DriftSettings& settings) = 0;
};

// The exclusive deploy right per (application, environment).
class AppLocks {
 public:
  virtual ~AppLocks() = default;
  // The exclusive deploy right for (app, env), or nullptr when another
  // holder (in this or another process) has it. Released when the lock is
  // destroyed or its holder dies.
  virtual absl::StatusOr<std::unique_ptr<AppLock>> TryLock(const std::string& app, const std::string& env) = 0;
  // Whether this replica may act on `env` at all (holds its lease, when
  // environments are leased; LeasedAppLocks). A deployment of an
  // environment it does not own is left to the owner's recovery.
  virtual bool Owns(const std::string& env) { return true; }
};

// The position in the planner's release stream (of this deployer's group).
class PlanCursorStore {
 public:
  virtual ~PlanCursorStore() = default;
  virtual absl::StatusOr<std::string> GetCursor() = 0;
  virtual absl::Status SaveCursor(const std::string& cursor) = 0;
};

// Everything the deployer stores.
class DeploymentStore : public DeploymentRecords,
                        public OutcomeLedger,
                        public PinStore,
                        public DriftStore,
                        public AppLocks,
                        public PlanCursorStore {};

}  // namespace ferry::deployer
