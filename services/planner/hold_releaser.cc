#include "services/planner/hold_releaser.h"

#include "common/logging/logger.h"

namespace ferry::planner {

HoldReleaser::~HoldReleaser() { Stop(); }

void HoldReleaser::Start() {
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      cv_.wait_for(lock, absl::ToChronoMilliseconds(interval_), [&] { return stop_; });
      if (stop_) return;
      lock.unlock();
      absl::StatusOr<int> released = holds_->ReevaluateHolds();
      if (!released.ok()) logging::Warn("re-evaluating held plans failed", {{"error", released.status().ToString()}});
      lock.lock();
    }
  });
}

void HoldReleaser::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

}  // namespace ferry::planner
