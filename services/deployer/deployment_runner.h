#pragma once

#include <atomic>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock/clock.h"
#include "common/concurrency/mutex.h"
#include "ferry/v1/deployer.pb.h"
#include "ferry/v1/planner.pb.h"
#include "services/deployer/deployer_metrics.h"
#include "services/deployer/deployment_notifier.h"
#include "services/deployer/deployment_store.h"
#include "services/deployer/target.h"

namespace ferry::deployer {

struct RunnerOptions {
  std::string deployer_id = "deployer";
  absl::Duration health_poll = absl::Milliseconds(200);
  absl::Duration default_health_timeout = absl::Minutes(5);
  // An unfinished deployment taken up this many times in a row without a
  // step completing (its first run counts; an attempt that ended with an
  // error while the deployer stayed up, or by Stop(), does not) is
  // quarantined: FAILED, nothing rolled back or pinned. 0 never
  // quarantines. --max-recovery-attempts.
  int max_attempts_without_progress = 2;
  // Test only (FERRY_TEST_CRASH_AFTER_STEP): the process kills itself
  // (SIGKILL) right after saving this many apply, delete or health-check
  // steps (a step's outcome is saved with the next step's start: both are
  // saved when it dies). 0 = off.
  int test_crash_after_steps = 0;
};

// Executes deployments: applies objects wave by wave, gates each wave on the
// health of its objects within the health timeout, prunes last, and records
// every step before and after it runs. When a rollout fails, it rolls the
// application back to its last successful deployment (a deployment of its
// own, AUTO_ROLLBACK, linked both ways) and pins it there. The caller holds
// the (application, environment) lock. Thread-safe; one call per
// (application, environment) at a time.
class DeploymentRunner {
 public:
  DeploymentRunner(DeploymentStore* store, TargetFactory* targets, DeploymentNotifier* notifier,
                   DeployerMetrics* metrics, const Clock* clock, RunnerOptions options);

  // Runs a PENDING deployment to a terminal state and returns it as it
  // ended. ABORTED when Stop() was called (the deployment stays RUNNING and
  // is recovered by the next start); UNAVAILABLE/INTERNAL when the store
  // fails (likewise left for recovery).
  // `read`: the deployment's (application, environment) as just read with
  // its pin and applied objects (ReadAppState, under the lock), which the
  // run then does not read again; null: the run reads them.
  absl::StatusOr<v1::Deployment> Run(v1::Deployment deployment, const v1::Plan& spec,
                                     const DeploymentRecords::AppState* read = nullptr);

  // For a deployment left PENDING or RUNNING by a deployer that stopped or
  // died: resumes it from its recorded steps (steps left RUNNING are
  // recorded as interrupted; an object the target already shows live at
  // this revision is recorded "already live", not applied again) and
  // finishes it, or fails it on its own merits (a failed apply or health
  // check, which may roll back and pin). An interruption is never a
  // failure. One taken up max_attempts_without_progress times in a row
  // without completing a step is quarantined instead. Marks it recovered.
  absl::StatusOr<v1::Deployment> Recover(v1::Deployment deployment, const v1::Plan& spec);

  // Records a deployment that could not be processed (e.g. its stored spec
  // is unreadable) as FAILED with `reason`, so that it blocks nothing.
  absl::StatusOr<v1::Deployment> RecordUnprocessable(v1::Deployment deployment, const std::string& reason);

  // Records a recorded deployment that failed before anything changed (e.g.
  // its application was pinned while it waited). It is FAILED at once;
  // nothing is rolled back.
  absl::StatusOr<v1::Deployment> RecordRefused(v1::Deployment deployment, const v1::Plan& spec,
                                               const std::string& reason);
  // Records a new deployment that its target refused before anything
  // changed (an unknown kind, a path outside the root): created FAILED, with
  // its audit event, in one write. Never PENDING first: a PENDING record
  // whose FAILED update did not follow (a replica without the lease, a
  // crash) would be run by recovery from its unprepared spec.
  absl::StatusOr<v1::Deployment> CreateRefused(v1::Deployment deployment, const v1::Plan& spec,
                                               const std::string& reason);

  // Makes running deployments stop between steps.
  void Stop() { stopping_ = true; }

  // The desired objects of a plan.
  static std::vector<TargetObject> ObjectsOf(const v1::Plan& spec);
  // A fresh deployment id.
  static std::string NewId();

 private:
  struct Exec;
  absl::StatusOr<v1::Deployment> RunOnce(v1::Deployment deployment, const v1::Plan& spec,
                                         const DeploymentRecords::AppState* read);
  absl::StatusOr<v1::Deployment> RecoverOnce(v1::Deployment deployment, const v1::Plan& spec);
  absl::Status Begin(Exec& ex);
  absl::Status Execute(Exec& ex, std::string* failure);
  absl::StatusOr<v1::Deployment> Finish(Exec& ex, const std::string& failure);
  absl::StatusOr<v1::Deployment> Quarantine(Exec& ex, const v1::Deployment& with_steps, int attempts);
  // Steps left RUNNING by an earlier attempt: recorded as interrupted.
  absl::Status MarkInterrupted(Exec& ex, const v1::Deployment& with_steps);
  // After a deliberate stop (Stop()): the next attempt is not counted as one
  // without progress.
  void NoteStopped(Exec& ex, const absl::Status& why);
  // The test failpoint (test_crash_after_steps).
  void StepSaved();
  // An attempt that returned an error in this process (an outage, a stop)
  // did not crash it: the next attempt here does not count it.
  void NoteEndedAlive(const std::string& id);
  bool TakeEndedAlive(const std::string& id);
  absl::StatusOr<v1::Deployment> Succeed(Exec& ex);
  absl::StatusOr<std::pair<v1::Deployment, v1::Plan>> PrepareRollback(Exec& failed, const v1::Deployment& restore);
  // `plan_digest`: the saved plan an apply step ran (Terraform), in its audit event.
  absl::Status SaveStep(Exec& ex, const v1::DeploymentStep& step, const AppliedChange* change,
                        const std::string& plan_digest = "");
  // A step that succeeded, saved with the next write of this deployment
  // (a step's start, or its update) rather than alone (issue #23). The next
  // write always comes before the target is changed again or waited on,
  // and before the run returns (SavePendingOnStop).
  void SaveStepWithNext(Exec& ex, const v1::DeploymentStep& step, const AppliedChange* change,
                        const std::string& plan_digest = "");
  // Saves Begin's held update (Exec::held_update) alone, if any.
  absl::Status SaveHeldUpdate(Exec& ex);
  // Publishes a deployment's record to its watchers.
  void PublishRecord(const std::string& id, const v1::Deployment& d);
  // Makes `d` FAILED as refused before anything changed; its audit event.
  v1::Event MarkRefused(v1::Deployment& d, const std::string& reason);
  // Saves the held update and the steps waiting for the next write, alone.
  absl::Status SavePending(Exec& ex);
  void SavePendingOnStop(Exec& ex);
  std::vector<DeploymentRecords::StepWrite> TakePending(Exec& ex);
  // Publishes the first `n` of `writes`, saved, and counts the pending ones
  // for the failpoint.
  void PublishSteps(Exec& ex, const std::vector<DeploymentRecords::StepWrite>& writes, size_t n);
  DeploymentRecords::StepWrite StepWriteOf(Exec& ex, const v1::DeploymentStep& step, const AppliedChange* change,
                                           const std::string& plan_digest);
  // Saves the deployment record (with the pending steps before it).
  absl::Status SaveDeployment(Exec& ex, const std::vector<v1::Event>& events, const ManagedApp* app,
                              const v1::PinState* pin);
  v1::DeploymentStep NewStep(Exec& ex, v1::StepKind kind, int wave, const std::string& message);
  void EndStep(v1::DeploymentStep& step, v1::StepResult result, const std::string& message);
  // Waits until every object is HEALTHY or `deadline` passes; on failure
  // returns false with the unhealthy objects in `why`.
  bool WaitHealthy(Exec& ex, const std::vector<TargetObject>& objects, absl::Time deadline, std::string* why);

  DeploymentStore* store_;
  TargetFactory* targets_;
  DeploymentNotifier* notifier_;
  DeployerMetrics* metrics_;
  const Clock* clock_;
  const RunnerOptions options_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> steps_saved_{0};
  ferry::Mutex mu_;
  std::set<std::string> ended_alive_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::deployer
