#pragma once

#include <cstdint>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "common/concurrency/mutex.h"

namespace ferry::testing {

// A clock that moves only when the test says so. Threads sleeping on its
// alarms (BackgroundLoop waits) wake when Advance() reaches their deadline
// or their alarm is woken, so tests need no real sleeps. The test can wait
// (really, but without polling) until a thread has gone to sleep:
//   clock.AwaitSleeps(1);            // the loop is waiting
//   EXPECT_EQ(clock.SleepingUntil(), clock.Now() + absl::Seconds(5));
//   clock.Advance(absl::Seconds(5)); // ... and runs again
// Thread-safe. Link ferry_clock.
class FakeClock final : public WaitableClock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'700'000'000)) : now_(start) {}

  absl::Time Now() const override {
    MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    MutexLock lock(&mu_);
    now_ += d;
    cv_.SignalAll();
  }
  void Set(absl::Time t) {
    MutexLock lock(&mu_);
    now_ = t;
    cv_.SignalAll();
  }
  // Moves the clock to the deadline of the sleeper that wakes first (no-op
  // when nobody sleeps or it sleeps for ever).
  void AdvanceToNextDeadline() {
    MutexLock lock(&mu_);
    if (sleeping_ > 0 && sleeping_until_ != absl::InfiniteFuture() && sleeping_until_ > now_) now_ = sleeping_until_;
    cv_.SignalAll();
  }

  // How many sleeps have begun so far (each SleepUntil that had to wait).
  uint64_t sleeps() const {
    MutexLock lock(&mu_);
    return sleeps_;
  }
  // Blocks until at least `n` sleeps have begun in total and one is still
  // under way.
  void AwaitSleeps(uint64_t n) const {
    MutexLock lock(&mu_);
    while (sleeps_ < n || sleeping_ == 0) cv_.Wait(&mu_);
  }
  // The deadline of the latest sleep to begin (InfinitePast before any).
  absl::Time SleepingUntil() const {
    MutexLock lock(&mu_);
    return sleeping_until_;
  }

  std::unique_ptr<Alarm> NewAlarm() const override { return std::make_unique<FakeAlarm>(this); }

 private:
  class FakeAlarm final : public Alarm {
   public:
    explicit FakeAlarm(const FakeClock* clock) : clock_(clock) {}
    bool SleepUntil(absl::Time deadline) override {
      MutexLock lock(&clock_->mu_);
      if (!woken_ && clock_->now_ < deadline) {
        ++clock_->sleeps_;
        ++clock_->sleeping_;
        clock_->sleeping_until_ = deadline;
        clock_->cv_.SignalAll();  // AwaitSleeps
        while (!woken_ && clock_->now_ < deadline) clock_->cv_.Wait(&clock_->mu_);
        --clock_->sleeping_;
      }
      const bool woken = woken_;
      woken_ = false;
      return woken;
    }
    void Wake() override {
      MutexLock lock(&clock_->mu_);
      woken_ = true;
      clock_->cv_.SignalAll();
    }

   private:
    const FakeClock* clock_;
    bool woken_ ABSL_GUARDED_BY(clock_->mu_) = false;
  };

  mutable Mutex mu_;
  mutable CondVar cv_;  // the time, a sleep or a wake changed
  absl::Time now_ ABSL_GUARDED_BY(mu_);
  mutable uint64_t sleeps_ ABSL_GUARDED_BY(mu_) = 0;
  mutable int sleeping_ ABSL_GUARDED_BY(mu_) = 0;
  mutable absl::Time sleeping_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace ferry::testing
