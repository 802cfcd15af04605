#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/time/time.h"
#include "services/planner/hold_evaluator.h"

namespace ferry::planner {

// One job: re-evaluating held plans (sync windows open with time, promotion
// gates and dependencies with other plans) every `interval` on a background
// thread. Thread-safe; Stop() is idempotent.
class HoldReleaser {
 public:
  HoldReleaser(HoldEvaluator* holds, absl::Duration interval) : holds_(holds), interval_(interval) {}
  ~HoldReleaser();
  void Start();
  void Stop();

 private:
  HoldEvaluator* holds_;
  const absl::Duration interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace ferry::planner
