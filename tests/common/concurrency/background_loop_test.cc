#include "common/concurrency/background_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/concurrency/mutex.h"
#include "tests/support/fake_clock.h"

namespace ferry::concurrency {
namespace {

using ::ferry::testing::FakeClock;

// Records what the loop reported after failed steps.
struct Failures {
  Mutex mu;
  std::vector<absl::Status> statuses ABSL_GUARDED_BY(mu);
  std::vector<absl::Duration> waits ABSL_GUARDED_BY(mu);
  LoopOptions Options(BackoffPolicy policy) {
    LoopOptions o;
    o.backoff = policy;
    o.on_failure = [this](const absl::Status& s, absl::Duration retry_in) {
      MutexLock lock(&mu);
      statuses.push_back(s);
      waits.push_back(retry_in);
    };
    return o;
  }
  std::vector<absl::Duration> Waits() {
    MutexLock lock(&mu);
    return waits;
  }
};

TEST(BackgroundLoopTest, RunsAtOnceThenAfterTheWaitTheStepAsksFor) {
  FakeClock clock;
  const absl::Time start = clock.Now();
  std::atomic<int> runs{0};
  BackgroundLoop loop("test", [&]() -> absl::StatusOr<absl::Duration> {
    ++runs;
    return absl::Seconds(5);
  }, {}, &clock);
  loop.Start();
  clock.AwaitSleeps(1);
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(clock.SleepingUntil(), start + absl::Seconds(5));
  clock.Advance(absl::Seconds(4));
  clock.Advance(absl::Seconds(1));
  clock.AwaitSleeps(2);
  EXPECT_EQ(runs.load(), 2);
  EXPECT_EQ(clock.SleepingUntil(), start + absl::Seconds(10));
}

// A step that reads the clock and returns the time left until a deadline
// (the poll scheduler's dispatcher): by default its wait counts from its
// end, so the loop sleeps past the deadline by the time the step took;
// counted from its start, it wakes at the deadline. The clock moving during
// the step is what made the poll scheduler's dispatcher sleep a whole
// interval too long when a test moved the fake clock at that moment.
TEST(BackgroundLoopTest, AWaitCountedFromTheStepsStartEndsAtTheDeadlineTheStepRead) {
  for (bool from_start : {false, true}) {
    SCOPED_TRACE(from_start ? "wait_from_step_start" : "default");
    FakeClock clock;
    const absl::Time start = clock.Now();
    const absl::Time deadline = start + absl::Seconds(5);
    std::atomic<int> runs{0};
    LoopOptions options;
    options.wait_from_step_start = from_start;
    BackgroundLoop loop("test", [&]() -> absl::StatusOr<absl::Duration> {
      const absl::Time now = clock.Now();
      if (runs++ == 0) clock.Advance(absl::Seconds(3));  // the step takes 3 s
      return deadline - now;
    }, options, &clock);
    loop.Start();
    clock.AwaitSleeps(1);
    EXPECT_EQ(runs.load(), 1);
    EXPECT_EQ(clock.SleepingUntil(), from_start ? deadline : start + absl::Seconds(8));
    loop.Stop();
  }
}

TEST(BackgroundLoopTest, FirstRunWaitsFirstRunAfter) {
  FakeClock clock;
  const absl::Time start = clock.Now();
  std::atomic<int> runs{0};
  LoopOptions options;
  options.first_run_after = absl::Seconds(10);
  BackgroundLoop loop("test", [&]() -> absl::StatusOr<absl::Duration> {
    ++runs;
    return absl::InfiniteDuration();
  }, options, &clock);
  loop.Start();
  clock.AwaitSleeps(1);
  EXPECT_EQ(runs.load(), 0);
  EXPECT_EQ(clock.SleepingUntil(), start + absl::Seconds(10));
  clock.Advance(absl::Seconds(10));
  clock.AwaitSleeps(2);
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(clock.SleepingUntil(), absl::InfiniteFuture());
}

TEST(BackgroundLoopTest, FailuresBackOffDoublingToTheCapAndASuccessResetsIt) {
  FakeClock clock;
  Failures failures;
  std::atomic<int> runs{0};
  // Fails four times, succeeds once (asking to wait for a wake), then fails.
  BackgroundLoop loop("test", [&]() -> absl::StatusOr<absl::Duration> {
    int n = ++runs;
    if (n == 5) return absl::InfiniteDuration();
    return absl::UnavailableError("peer down");
  }, failures.Options({.initial = absl::Seconds(1), .max = absl::Seconds(4)}), &clock);
  loop.Start();
  const std::vector<absl::Duration> expected = {absl::Seconds(1), absl::Seconds(2), absl::Seconds(4),
                                                absl::Seconds(4)};
  for (size_t i = 0; i < expected.size(); ++i) {
    clock.AwaitSleeps(i + 1);
    EXPECT_EQ(clock.SleepingUntil() - clock.Now(), expected[i]) << "after failure " << i + 1;
    clock.AdvanceToNextDeadline();
  }
  clock.AwaitSleeps(5);  // the success: waits for a wake
  EXPECT_EQ(runs.load(), 5);
  EXPECT_EQ(clock.SleepingUntil(), absl::InfiniteFuture());
  loop.Wake();
  clock.AwaitSleeps(6);
  EXPECT_EQ(clock.SleepingUntil() - clock.Now(), absl::Seconds(1)) << "the success reset the backoff";
  EXPECT_EQ(failures.Waits(), (std::vector<absl::Duration>{absl::Seconds(1), absl::Seconds(2), absl::Seconds(4),
                                                           absl::Seconds(4), absl::Seconds(1)}));
  MutexLock lock(&failures.mu);
  EXPECT_EQ(failures.statuses.front().code(), absl::StatusCode::kUnavailable);
}

TEST(BackgroundLoopTest, WakeRunsTheStepWithoutTimePassing) {
  FakeClock clock;
  std::atomic<int> runs{0};
  BackgroundLoop loop("test", [&]() -> absl::StatusOr<absl::Duration> {
    ++runs;
    return absl::Hours(1);
  }, {}, &clock);
  loop.Start();
  clock.AwaitSleeps(1);
  const absl::Time before = clock.Now();
  loop.Wake();
  clock.AwaitSleeps(2);
  EXPECT_EQ(runs.load(), 2);
  EXPECT_EQ(clock.Now(), before);
}

TEST(BackgroundLoopTest, WakeEndsABackoffByDefault) {
  FakeClock clock;
  std::atomic<int> runs{0};
  BackgroundLoop loop("test", [&]() -> absl::StatusOr<absl::Duration> {
    ++runs;
    return absl::InternalError("broken");
  }, {.backoff = {.initial = absl::Minutes(1)}, .on_failure = [](const absl::Status&, absl::Duration) {}}, &clock);
  loop.Start();
  clock.AwaitSleeps(1);
  loop.Wake();
  clock.AwaitSleeps(2);
  EXPECT_EQ(runs.load(), 2);
}

TEST(BackgroundLoopTest, WakeDuringABackoffIsDroppedWhenWakesDoNotEndBackoffs) {
  FakeClock clock;
  std::atomic<int> runs{0};
  LoopOptions options;
  options.backoff = {.initial = absl::Minutes(1)};
  options.wake_ends_backoff = false;
  options.on_failure = [](const absl::Status&, absl::Duration) {};
  BackgroundLoop loop("test", [&]() -> absl::StatusOr<absl::Duration> {
    ++runs;
    return absl::InternalError("broken");
  }, options, &clock);
  loop.Start();
  clock.AwaitSleeps(1);
  const absl::Time until = clock.SleepingUntil();
  loop.Wake();
  clock.AwaitSleeps(2);  // woken, and asleep again until the same deadline
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(clock.SleepingUntil(), until);
  clock.AdvanceToNextDeadline();
  clock.AwaitSleeps(3);
  EXPECT_EQ(runs.load(), 2);
}

TEST(BackgroundLoopTest, StopEndsTheWaitAndJoins) {
  FakeClock clock;
  std::atomic<int> runs{0};
  BackgroundLoop loop("test", [&]() -> absl::StatusOr<absl::Duration> {
    ++runs;
    return absl::InfiniteDuration();
  }, {}, &clock);
  loop.Start();
  clock.AwaitSleeps(1);
  loop.Stop();  // hangs here if the wait does not end
  loop.Stop();  // idempotent
  loop.Start();  // a stopped loop stays stopped
  loop.Wake();
  EXPECT_EQ(runs.load(), 1);
}

TEST(BackgroundLoopTest, StopBeforeStartAndDestructionWithoutStopAreFine) {
  FakeClock clock;
  {
    BackgroundLoop never("never", []() -> absl::StatusOr<absl::Duration> { return absl::Seconds(1); }, {}, &clock);
    never.Stop();
  }
  std::atomic<int> runs{0};
  {
    BackgroundLoop loop("test", [&]() -> absl::StatusOr<absl::Duration> {
      ++runs;
      return absl::Seconds(1);
    }, {}, &clock);
    loop.Start();
    clock.AwaitSleeps(1);
  }  // the destructor stops and joins
  EXPECT_EQ(runs.load(), 1);
}

TEST(BackgroundLoopTest, AStepThatThrowsIsAFailureAndTheLoopGoesOn) {
  FakeClock clock;
  Failures failures;
  std::atomic<int> runs{0};
  BackgroundLoop loop("thrower", [&]() -> absl::StatusOr<absl::Duration> {
    int n = ++runs;
    if (n == 1) throw std::runtime_error("json parse error");
    if (n == 2) throw 42;  // not even a std::exception
    return absl::InfiniteDuration();
  }, failures.Options({.initial = absl::Seconds(1), .max = absl::Seconds(10)}), &clock);
  loop.Start();
  clock.AwaitSleeps(1);
  EXPECT_EQ(clock.SleepingUntil() - clock.Now(), absl::Seconds(1));
  clock.AdvanceToNextDeadline();
  clock.AwaitSleeps(2);
  EXPECT_EQ(clock.SleepingUntil() - clock.Now(), absl::Seconds(2));
  clock.AdvanceToNextDeadline();
  clock.AwaitSleeps(3);
  EXPECT_EQ(runs.load(), 3);
  MutexLock lock(&failures.mu);
  ASSERT_EQ(failures.statuses.size(), 2u);
  EXPECT_EQ(failures.statuses[0].code(), absl::StatusCode::kInternal);
  EXPECT_NE(failures.statuses[0].message().find("json parse error"), std::string::npos) << failures.statuses[0];
  EXPECT_NE(failures.statuses[0].message().find("thrower"), std::string::npos) << failures.statuses[0];
  EXPECT_EQ(failures.statuses[1].code(), absl::StatusCode::kInternal);
}

TEST(BackgroundLoopTest, RunsOnTheSystemClockByDefault) {
  Mutex mu;
  CondVar ran;
  int runs = 0;  // under mu
  BackgroundLoop loop("system", [&]() -> absl::StatusOr<absl::Duration> {
    MutexLock lock(&mu);
    ++runs;
    ran.SignalAll();
    return runs < 3 ? absl::Milliseconds(1) : absl::InfiniteDuration();
  });
  loop.Start();
  MutexLock lock(&mu);
  while (runs < 3) ran.Wait(&mu);
  EXPECT_EQ(runs, 3);
}

}  // namespace
}  // namespace ferry::concurrency
