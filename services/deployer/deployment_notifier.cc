#include "services/deployer/deployment_notifier.h"

namespace ferry::deployer {

bool DeploymentNotifier::Subscription::Next(v1::WatchDeploymentResponse* out, absl::Duration timeout) {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait_for(l, absl::ToChronoMilliseconds(timeout), [&] { return closed_ || !queue_.empty(); });
  if (queue_.empty()) return false;
  *out = std::move(queue_.front());
  queue_.pop_front();
  return true;
}

bool DeploymentNotifier::Subscription::closed() {
  std::lock_guard<std::mutex> l(mu_);
  return closed_;
}

std::shared_ptr<DeploymentNotifier::Subscription> DeploymentNotifier::Subscribe(const std::string& deployment_id) {
  auto sub = std::make_shared<Subscription>();
  std::lock_guard<std::mutex> l(mu_);
  if (shutdown_) {
    sub->closed_ = true;
  } else {
    subs_.emplace(deployment_id, sub);
  }
  return sub;
}

void DeploymentNotifier::Unsubscribe(const std::string& deployment_id, const std::shared_ptr<Subscription>& sub) {
  std::lock_guard<std::mutex> l(mu_);
  auto [b, e] = subs_.equal_range(deployment_id);
  for (auto it = b; it != e; ++it) {
    if (it->second == sub) {
      subs_.erase(it);
      return;
    }
  }
}

void DeploymentNotifier::Publish(const std::string& deployment_id, const v1::WatchDeploymentResponse& event) {
  std::lock_guard<std::mutex> l(mu_);
  auto [b, e] = subs_.equal_range(deployment_id);
  for (auto it = b; it != e; ++it) {
    std::lock_guard<std::mutex> sl(it->second->mu_);
    it->second->queue_.push_back(event);
    it->second->cv_.notify_all();
  }
}

void DeploymentNotifier::Shutdown() {
  std::lock_guard<std::mutex> l(mu_);
  shutdown_ = true;
  for (auto& [id, sub] : subs_) {
    std::lock_guard<std::mutex> sl(sub->mu_);
    sub->closed_ = true;
    sub->cv_.notify_all();
  }
  subs_.clear();
}

}  // namespace ferry::deployer
