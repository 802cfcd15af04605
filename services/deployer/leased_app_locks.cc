#include "services/deployer/leased_app_locks.h"

#include "services/deployer/app_ids.h"

namespace ferry::deployer {

class LeasedAppLocks::Lock final : public AppLock {
 public:
  Lock(std::shared_ptr<State> state, std::string key) : state_(std::move(state)), key_(std::move(key)) {}
  ~Lock() override {
    ferry::MutexLock l(&state_->mu);
    state_->locked.erase(key_);
  }

 private:
  const std::shared_ptr<State> state_;
  const std::string key_;
};

absl::StatusOr<std::unique_ptr<AppLock>> LeasedAppLocks::TryLock(const std::string& app, const std::string& env) {
  if (!leases_->Holds(env)) return std::unique_ptr<AppLock>();  // Another replica's (or nobody's yet).
  std::string key = AppKey(app, env);
  ferry::MutexLock l(&state_->mu);
  if (!state_->locked.insert(key).second) return std::unique_ptr<AppLock>();
  return std::unique_ptr<AppLock>(std::make_unique<Lock>(state_, key));
}

}  // namespace ferry::deployer
