#pragma once

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace ferry {

// The source of time for domain code, injected so that tests can move it.
// Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

// Wall-clock time.
class SystemClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace ferry
