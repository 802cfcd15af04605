#include "services/deployer/deployment_notifier.h"

#include "absl/time/clock.h"

namespace ferry::deployer {

bool DeploymentNotifier::Subscription::Next(v1::WatchDeploymentResponse* out, absl::Duration timeout) {
  ferry::MutexLock l(&mu_);
  const absl::Time deadline = absl::Now() + timeout;
  while (!closed_ && queue_.empty()) {
    if (cv_.WaitWithDeadline(&mu_, deadline)) break;
  }
  if (queue_.empty()) return false;
  *out = std::move(queue_.front());
  queue_.pop_front();
  return true;
}

bool DeploymentNotifier::Subscription::closed() {
  ferry::MutexLock l(&mu_);
  return closed_;
}

std::shared_ptr<DeploymentNotifier::Subscription> DeploymentNotifier::Subscribe(const std::string& deployment_id) {
  auto sub = std::make_shared<Subscription>();
  ferry::MutexLock l(&mu_);
  if (shutdown_) {
    ferry::MutexLock sl(&sub->mu_);
    sub->closed_ = true;
  } else {
    subs_.emplace(deployment_id, sub);
  }
  return sub;
}

void DeploymentNotifier::Unsubscribe(const std::string& deployment_id, const std::shared_ptr<Subscription>& sub) {
  ferry::MutexLock l(&mu_);
  auto [b, e] = subs_.equal_range(deployment_id);
  for (auto it = b; it != e; ++it) {
    if (it->second == sub) {
      subs_.erase(it);
      return;
    }
  }
}

void DeploymentNotifier::Publish(const std::string& deployment_id, const v1::WatchDeploymentResponse& event) {
  ferry::MutexLock l(&mu_);
  auto [b, e] = subs_.equal_range(deployment_id);
  for (auto it = b; it != e; ++it) {
    Subscription& sub = *it->second;
    ferry::MutexLock sl(&sub.mu_);
    sub.queue_.push_back(event);
    sub.cv_.SignalAll();
  }
}

void DeploymentNotifier::Shutdown() {
  ferry::MutexLock l(&mu_);
  shutdown_ = true;
  for (auto& entry : subs_) {
    Subscription& sub = *entry.second;
    ferry::MutexLock sl(&sub.mu_);
    sub.closed_ = true;
    sub.cv_.SignalAll();
  }
  subs_.clear();
}

}  // namespace ferry::deployer
