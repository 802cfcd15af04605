#pragma once

#include <deque>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "common/concurrency/mutex.h"
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
    ferry::Mutex mu_;
    ferry::CondVar cv_;  // Signalled when an event is queued or the subscription closes.
    std::deque<v1::WatchDeploymentResponse> queue_ ABSL_GUARDED_BY(mu_);
    bool closed_ ABSL_GUARDED_BY(mu_) = false;
  };

  // Events of `deployment_id` published after this call reach the subscription.
  std::shared_ptr<Subscription> Subscribe(const std::string& deployment_id);
  void Unsubscribe(const std::string& deployment_id, const std::shared_ptr<Subscription>& sub);
  void Publish(const std::string& deployment_id, const v1::WatchDeploymentResponse& event);
  // Closes every subscription; later ones start closed.
  void Shutdown();

 private:
  ferry::Mutex mu_;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  std::multimap<std::string, std::shared_ptr<Subscription>> subs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::deployer
