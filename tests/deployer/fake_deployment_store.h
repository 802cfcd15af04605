#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/concurrency/mutex.h"
#include "services/deployer/deployment_store.h"

namespace ferry::deployer::testing {

// DeploymentStore in memory, for logic tests without PostgreSQL. Same
// contract as PostgresDeploymentStore (tests/deployer/deployer_test.cc
// checks that one); audit events are kept in events(). Thread-safe.
class FakeDeploymentStore final : public DeploymentStore {
 public:
  absl::Status Create(const v1::Deployment& deployment, const v1::Plan& spec,
                      const std::vector<v1::Event>& events) override;
  absl::Status Update(const v1::Deployment& deployment, const std::vector<v1::Event>& events, const ManagedApp* app,
                      const v1::PinState* pin) override;
  absl::Status SaveStep(const std::string& deployment_id, const v1::DeploymentStep& step, const AppliedChange* change,
                        const std::vector<v1::Event>& events) override;
  // One write, all or none, as a transaction.
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

  // Test set-up and inspection.
  // Records `app` as managed, with `objects` applied by its live deployment.
  void AddManaged(const ManagedApp& app, const std::vector<TargetObject>& objects);
  // Audit events written so far, in order.
  std::vector<v1::Event> events();
  // Deployment ids marked reported.
  std::set<std::string> reported();
  // Drift record ids healed, with the deployment that healed them.
  std::map<int64_t, std::string> healed();
  // Makes every read of drift settings fail with `error` (OK: back to normal).
  void FailDriftSettings(absl::Status error);
  // Makes every read of the plan cursor fail with `error` (OK: back to
  // normal); counts the reads.
  void FailCursor(absl::Status error);
  int cursor_reads();
  // Simulates the death of the deployer: after `writes` more successful
  // writes (Create, Update, SaveStep, SavePin, SaveRecoveryAttempts), every
  // write fails with UNAVAILABLE, as if the process were gone, until
  // Revive(). CrashAfterWrites(0) dies at once.
  void CrashAfterWrites(int writes);
  void Revive();
  bool crashed();
  // Steps saved so far (by SaveStep, SaveSteps and SaveStepsThenUpdate).
  int step_saves();
  // Writes that saved more than one step, or a step with its deployment, so far.
  int combined_step_writes();
  // Calls of MarkReported so far.
  int mark_reported_writes();
  // Reads of the whole managed-application list, and of global drift
  // settings (GetDriftSettings("", "")), so far.
  int managed_list_reads();
  // Reads of one deployment or (application, environment) so far: Get,
  // GetPin, Applied, GetManagedApp and ReadAppState, one each.
  int record_reads();
  // Applied objects ReadAppState returned so far (a page's, when paged).
  int applied_rows_read();
  int global_drift_settings_reads();
  // Reads of drift check inputs so far: of one application
  // (ReadDriftCheckInputs), and of several together (ReadDriftCheckInputsOf).
  int drift_input_reads();
  int drift_input_batch_reads();
  // Runs `hook` after every ReadDriftCheckInputsOf, with its answer read
  // (a deployment made between a pass's read and its checks).
  void AfterDriftInputBatchRead(std::function<void()> hook);
  // Create of deployment `id` fails with `error` while its spec has
  // manifests (e.g. a spec too large to store); a record without them is
  // stored.
  void FailCreateWithManifests(const std::string& id, absl::Status error);
  // GetPin of application `app` fails with `error`.
  void FailGetPin(const std::string& app, absl::Status error);
  // GetSpec of deployment `id` fails with `error`.
  void FailGetSpec(const std::string& id, absl::Status error);
  // The next Get of `id` answers NOT_FOUND once, as a reader would see it
  // before another taker's insert commits.
  void MissNextGet(const std::string& id) {
    ferry::MutexLock l(&mu_);
    missed_gets_.insert(id);
  }

 private:
  struct Row {
    int64_t seq = 0;
    v1::Deployment record;
    v1::Plan spec;
    std::map<int64_t, v1::DeploymentStep> steps;
    bool reported = false;
    RecoveryAttempts attempts;
  };
  class Lock;
  void Unlock(const std::string& key);
  void AddEvents(const std::vector<v1::Event>& events) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // OK when a write may go ahead (and counts it against the crash budget).
  absl::Status Write() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The changes of Update and SaveStep, once their write is allowed.
  void UpdateLocked(const v1::Deployment& d, const std::vector<v1::Event>& events, const ManagedApp* app,
                    const v1::PinState* pin) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SaveStepLocked(const std::string& deployment_id, const StepWrite& write) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::Deployment WithSteps(const Row& row, bool include_steps) const;
  std::vector<AppliedObject> AppliedLocked(const std::string& app, const std::string& env)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::PinState> PinLocked(const std::string& app, const std::string& env)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  ferry::Mutex mu_;

  std::set<std::string> missed_gets_ ABSL_GUARDED_BY(mu_);
  int64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<std::string, Row> deployments_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::map<std::string, AppliedObject>> applied_ ABSL_GUARDED_BY(mu_);  // app/env -> key
  std::map<std::string, ManagedApp> managed_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::PinState> pins_ ABSL_GUARDED_BY(mu_);
  int64_t next_drift_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<int64_t, std::string> healed_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::DriftSettings> drift_settings_ ABSL_GUARDED_BY(mu_);
  absl::Status drift_settings_error_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> locks_ ABSL_GUARDED_BY(mu_);
  std::string cursor_ ABSL_GUARDED_BY(mu_);
  absl::Status cursor_error_ ABSL_GUARDED_BY(mu_);
  int cursor_reads_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<v1::Event> events_ ABSL_GUARDED_BY(mu_);
  int writes_left_ ABSL_GUARDED_BY(mu_) = -1;  // -1: no crash armed
  bool crashed_ ABSL_GUARDED_BY(mu_) = false;
  int step_saves_ ABSL_GUARDED_BY(mu_) = 0;
  int combined_step_writes_ ABSL_GUARDED_BY(mu_) = 0;
  int managed_list_reads_ ABSL_GUARDED_BY(mu_) = 0;
  int record_reads_ ABSL_GUARDED_BY(mu_) = 0;
  int applied_rows_read_ ABSL_GUARDED_BY(mu_) = 0;
  int mark_reported_writes_ ABSL_GUARDED_BY(mu_) = 0;
  int global_drift_settings_reads_ ABSL_GUARDED_BY(mu_) = 0;
  int drift_input_reads_ ABSL_GUARDED_BY(mu_) = 0;
  int drift_input_batch_reads_ ABSL_GUARDED_BY(mu_) = 0;
  std::function<void()> after_drift_input_batch_read_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Status> create_errors_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Status> spec_errors_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Status> pin_errors_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::deployer::testing
