#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "absl/time/time.h"

namespace ferry::planner {

// Wakes WatchApprovedPlans streams when a plan is released or changes
// state. A generation counter avoids lost wake-ups. Thread-safe.
class PlanNotifier {
 public:
  void Notify() {
    std::lock_guard<std::mutex> lock(mu_);
    ++generation_;
    cv_.notify_all();
  }
  uint64_t generation() {
    std::lock_guard<std::mutex> lock(mu_);
    return generation_;
  }
  // Returns when the generation moved past `seen`, after `timeout`, or at
  // shutdown; returns the current generation.
  uint64_t Wait(uint64_t seen, absl::Duration timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout), [&] { return generation_ != seen || shutdown_; });
    return generation_;
  }
  // Wakes every waiter for good.
  void Shutdown() {
    std::lock_guard<std::mutex> lock(mu_);
    shutdown_ = true;
    cv_.notify_all();
  }
  bool shut_down() {
    std::lock_guard<std::mutex> lock(mu_);
    return shutdown_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t generation_ = 0;
  bool shutdown_ = false;
};

}  // namespace ferry::planner
