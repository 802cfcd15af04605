#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "common/concurrency/change_signal.h"
#include "common/concurrency/mutex.h"
#include "common/concurrency/worker_threads.h"
#include "absl/time/time.h"
#include "services/deployer/deployment_store.h"

namespace ferry::deployer {

// Where every deployment of this process runs: bounds how many run at once
// (slots), tracks the ids in flight (so that orphan recovery leaves them
// alone), runs them on worker threads, and hands out the (application,
// environment) locks that make deployments of one application run one at a
// time. Also the process's stop signal for the loops that feed it.
// A worker thread that finished its deployment waits up to `worker_idle`
// for the next one before it exits: a commit touching 10,000 applications
// ran 10,000 deployments, each on a thread created and torn down for it
// (issue #23). Thread-safe.
class DeploymentScheduler {
 public:
  DeploymentScheduler(AppLocks* locks, int max_concurrent_deployments,
                      absl::Duration lock_retry = absl::Milliseconds(200),
                      absl::Duration worker_idle = absl::Seconds(10));
  ~DeploymentScheduler();  // Stop() and Join().
  DeploymentScheduler(const DeploymentScheduler&) = delete;
  DeploymentScheduler& operator=(const DeploymentScheduler&) = delete;

  // Waits until fewer than max_concurrent_deployments run, then counts the
  // deployment as in flight (so recovery leaves it alone); false when
  // stopping. Spawn or ReleaseSlot follows.
  bool ReserveSlot(const std::string& deployment_id);
  // ReserveSlot without the wait: false when every slot is taken or when
  // stopping.
  bool TryReserveSlot(const std::string& deployment_id);
  void ReleaseSlot(const std::string& deployment_id);
  // Runs `fn` on a worker thread tracked for Join() and WaitIdle(): an idle
  // one when there is, else a new one. The id stays in flight until `fn` has
  // returned and been destroyed (with whatever it captured, such as a lock).
  // Nothing runs when stopping.
  void Spawn(const std::string& deployment_id, std::function<void()> fn);
  bool InFlight(const std::string& deployment_id);
  // Whether this replica owns `env` (AppLocks::Owns).
  bool Owns(const std::string& env) { return locks_->Owns(env); }
  // Waits until no deployment runs in this process (tests, benchmarks).
  void WaitIdle();

  // The (app, env) lock, or null when it is held. Releasing it wakes
  // AcquireLock waiters in this process at once.
  absl::StatusOr<std::unique_ptr<AppLock>> TryLock(const std::string& app, const std::string& env);
  // Waits for the (app, env) lock; null when stopping, or at once when this
  // replica does not own `env` (AppLocks::Owns: its lease is elsewhere). Woken when a lock of
  // this process is released; a lock held by another replica is retried
  // every lock_retry.
  std::unique_ptr<AppLock> AcquireLock(const std::string& app, const std::string& env);

  // Waits `d` or until Stop(); true when stopping.
  bool SleepUnlessStopping(absl::Duration d);
  bool stopping();
  // Makes waits return and later Spawns do nothing. False when already
  // stopping.
  bool Stop();
  // Joins every worker thread (after Stop(), which ends the idle ones' wait).
  void Join();

 private:
  void LockReleased();

  AppLocks* const locks_;
  const int max_concurrent_;
  const absl::Duration lock_retry_;

  // Notified when a lock of this process is released; cancelled by Stop().
  concurrency::ChangeSignal lock_released_;

  ferry::Mutex mu_;
  ferry::CondVar cv_;  // Signalled on every change below.
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::set<std::string> in_flight_ ABSL_GUARDED_BY(mu_);  // Deployment ids run by this process.

  // Last: destroyed (joined) first, while what the jobs use still exists.
  concurrency::WorkerThreads workers_;
};

}  // namespace ferry::deployer
