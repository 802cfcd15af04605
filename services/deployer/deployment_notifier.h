#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/time/time.h"
#include "ferry/v1/deployer.pb.h"

namespace ferry::deployer {

// In-process fan-out of deployment events (state changes and steps) to
// WatchDeployment streams. Publishers never block on subscribers.
// Thread-safe.
class DeploymentNotifier {
 public:
  class Subscription {
   public:
    // Waits up to `timeout` for the next event. Returns false on timeout or
    // when the notifier shut down (then closed() is true).
    bool Next(v1::WatchDeploymentResponse* out, absl::Duration timeout);
    bool closed();

   private:
    friend class DeploymentNotifier;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<v1::WatchDeploymentResponse> queue_;
    bool closed_ = false;
  };

  // Events of `deployment_id` published after this call reach the subscription.
  std::shared_ptr<Subscription> Subscribe(const std::string& deployment_id);
  void Unsubscribe(const std::string& deployment_id, const std::shared_ptr<Subscription>& sub);
  void Publish(const std::string& deployment_id, const v1::WatchDeploymentResponse& event);
  // Closes every subscription; later ones start closed.
  void Shutdown();

 private:
  std::mutex mu_;
  bool shutdown_ = false;
  std::multimap<std::string, std::shared_ptr<Subscription>> subs_;
};

}  // namespace ferry::deployer
