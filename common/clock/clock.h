#pragma once

#include <memory>

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

// Lets one thread sleep until a time by its clock's reckoning; Wake() from
// any thread cuts the sleep short. Thread-safe; one sleeper at a time.
class Alarm {
 public:
  virtual ~Alarm() = default;
  // Blocks until the clock reaches `deadline` or Wake() is called. A Wake()
  // while nobody sleeps ends the next sleep at once. Returns true when woken
  // (the wake is then used up), false when the deadline passed.
  virtual bool SleepUntil(absl::Time deadline) = 0;
  virtual void Wake() = 0;
};

// A clock that threads can also sleep on (background loops): with a fake
// one, tests move time and the sleepers follow, without real sleeps.
class WaitableClock : public Clock {
 public:
  // An alarm on this clock; the clock must outlive it.
  virtual std::unique_ptr<Alarm> NewAlarm() const = 0;
};

// Wall-clock time.
class SystemClock final : public WaitableClock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  std::unique_ptr<Alarm> NewAlarm() const override;
};

}  // namespace ferry
