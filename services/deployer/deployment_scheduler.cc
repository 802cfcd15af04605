#include "services/deployer/deployment_scheduler.h"

#include <utility>

#include "common/concurrency/last_resort.h"

namespace ferry::deployer {
namespace {

// A lock that calls `released` once it has been released.
class NotifyingLock final : public AppLock {
 public:
  NotifyingLock(std::unique_ptr<AppLock> inner, std::function<void()> released)
      : inner_(std::move(inner)), released_(std::move(released)) {}
  ~NotifyingLock() override {
    inner_.reset();
    released_();
  }

 private:
  std::unique_ptr<AppLock> inner_;
  std::function<void()> released_;
};

}  // namespace

DeploymentScheduler::DeploymentScheduler(AppLocks* locks, int max_concurrent_deployments, absl::Duration lock_retry,
                                         absl::Duration worker_idle)
    : locks_(locks),
      max_concurrent_(max_concurrent_deployments),
      lock_retry_(lock_retry),
      workers_(worker_idle) {}

DeploymentScheduler::~DeploymentScheduler() {
  Stop();
  Join();
}

bool DeploymentScheduler::ReserveSlot(const std::string& deployment_id) {
  ferry::MutexLock l(&mu_);
  // Bounded: beyond max_concurrent_deployments the caller (the plan intake)
  // waits, instead of every deployment of a large commit running, and
  // reporting to the planner, at once. The id counts as in flight from here
  // on, so that orphan recovery never takes a deployment that is about to
  // start.
  while (!stopping_ && static_cast<int>(in_flight_.size()) >= max_concurrent_) cv_.Wait(&mu_);
  if (stopping_) return false;
  in_flight_.insert(deployment_id);
  return true;
}

bool DeploymentScheduler::TryReserveSlot(const std::string& deployment_id) {
  ferry::MutexLock l(&mu_);
  if (stopping_ || static_cast<int>(in_flight_.size()) >= max_concurrent_) return false;
  in_flight_.insert(deployment_id);
  return true;
}

void DeploymentScheduler::ReleaseSlot(const std::string& deployment_id) {
  ferry::MutexLock l(&mu_);
  in_flight_.erase(deployment_id);
  cv_.SignalAll();
}

void DeploymentScheduler::Spawn(const std::string& deployment_id, std::function<void()> fn) {
  ferry::MutexLock l(&mu_);
  if (stopping_) {
    in_flight_.erase(deployment_id);
    cv_.SignalAll();
    return;
  }
  in_flight_.insert(deployment_id);
  // Under mu_, so that once Stop() has returned no job starts that Join()
  // would not wait for.
  workers_.Run([this, deployment_id, fn = std::move(fn)]() mutable {
    // A job that throws is logged (RunGuarded) and ends here like one that
    // returned: its slot and whatever it holds are released below.
    (void)concurrency::RunGuarded("deployment job " + deployment_id, fn);
    // Whatever `fn` holds (e.g. an application lock handed to it) is
    // released before the deployment stops counting as in flight, so that
    // after WaitIdle() nothing of it is held any more.
    fn = nullptr;
    ferry::MutexLock l(&mu_);
    in_flight_.erase(deployment_id);
    cv_.SignalAll();
  });
}

bool DeploymentScheduler::InFlight(const std::string& deployment_id) {
  ferry::MutexLock l(&mu_);
  return in_flight_.count(deployment_id) > 0;
}

void DeploymentScheduler::WaitIdle() {
  ferry::MutexLock l(&mu_);
  while (!in_flight_.empty()) cv_.Wait(&mu_);
}

void DeploymentScheduler::LockReleased() { lock_released_.Notify(); }

absl::StatusOr<std::unique_ptr<AppLock>> DeploymentScheduler::TryLock(const std::string& app, const std::string& env) {
  absl::StatusOr<std::unique_ptr<AppLock>> lock = locks_->TryLock(app, env);
  if (!lock.ok() || *lock == nullptr) return lock;
  return std::unique_ptr<AppLock>(std::make_unique<NotifyingLock>(std::move(*lock), [this] { LockReleased(); }));
}

std::unique_ptr<AppLock> DeploymentScheduler::AcquireLock(const std::string& app, const std::string& env) {
  while (true) {
    // Another replica's environment: its owner runs what waits there.
    if (!locks_->Owns(env)) return nullptr;
    // Read before trying, so that a release in between is not missed.
    const uint64_t seen = lock_released_.Version();
    absl::StatusOr<std::unique_ptr<AppLock>> lock = TryLock(app, env);
    if (lock.ok() && *lock) return std::move(*lock);
    // Woken by a release in this process; a holder elsewhere is retried
    // every lock_retry_. Stop() cancels the signal.
    lock_released_.WaitForChange(seen, lock_retry_);
    if (stopping()) return nullptr;
  }
}

bool DeploymentScheduler::SleepUnlessStopping(absl::Duration d) {
  ferry::MutexLock l(&mu_);
  absl::Time deadline = absl::Now() + d;
  while (!stopping_) {
    if (cv_.WaitWithDeadline(&mu_, deadline)) break;
  }
  return stopping_;
}

bool DeploymentScheduler::stopping() {
  ferry::MutexLock l(&mu_);
  return stopping_;
}

bool DeploymentScheduler::Stop() {
  ferry::MutexLock l(&mu_);
  if (stopping_) return false;
  stopping_ = true;
  cv_.SignalAll();
  lock_released_.Cancel();
  return true;
}

void DeploymentScheduler::Join() { workers_.Join(); }

}  // namespace ferry::deployer
