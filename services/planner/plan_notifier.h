#pragma once

#include <cstdint>

#include "absl/time/time.h"
#include "common/concurrency/change_signal.h"

namespace ferry::planner {

// Wakes WatchApprovedPlans streams when a plan is released or changes
// state. Transitional: the old names over concurrency::ChangeSignal, kept so
// that the planner's files compile unchanged; use ChangeSignal's own names
// (Version, WaitForChange, Cancel, cancelled) in new code.
class PlanNotifier : public concurrency::ChangeSignal {
 public:
  uint64_t generation() const { return Version(); }
  // Returns when the generation moved past `seen`, after `timeout`, or at
  // shutdown; returns the current generation.
  uint64_t Wait(uint64_t seen, absl::Duration timeout) const { return WaitForChange(seen, timeout); }
  // Wakes every waiter for good.
  void Shutdown() { Cancel(); }
  bool shut_down() const { return cancelled(); }
};

}  // namespace ferry::planner
