#include "common/concurrency/change_signal.h"

#include <gtest/gtest.h>

#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"

namespace ferry::concurrency {
namespace {

TEST(ChangeSignalTest, NotifyMovesTheVersionOn) {
  ChangeSignal signal;
  EXPECT_EQ(signal.Version(), 0u);
  signal.Notify();
  signal.Notify();
  EXPECT_EQ(signal.Version(), 2u);
}

TEST(ChangeSignalTest, ChangeBeforeTheWaitIsNotLost) {
  ChangeSignal signal;
  const uint64_t seen = signal.Version();
  signal.Notify();  // between reading the version and waiting
  // An hour-long timeout: the wait must return at once.
  EXPECT_EQ(signal.WaitForChange(seen, absl::Hours(1)), seen + 1);
}

TEST(ChangeSignalTest, WaitReturnsWhenAnotherThreadNotifies) {
  ChangeSignal signal;
  const uint64_t seen = signal.Version();
  absl::Notification waiting;
  std::thread notifier([&] {
    waiting.WaitForNotification();
    signal.Notify();
  });
  waiting.Notify();
  EXPECT_EQ(signal.WaitForChange(seen, absl::Hours(1)), seen + 1);
  notifier.join();
}

TEST(ChangeSignalTest, WaitWithoutChangeEndsAtTheTimeoutWithTheSameVersion) {
  ChangeSignal signal;
  signal.Notify();
  const absl::Time start = absl::Now();
  EXPECT_EQ(signal.WaitForChange(1, absl::Milliseconds(30)), 1u);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(25));
}

TEST(ChangeSignalTest, CancelEndsWaitsNowAndForGood) {
  ChangeSignal signal;
  absl::Notification waiting;
  std::thread waiter([&] {
    waiting.Notify();
    signal.WaitForChange(signal.Version(), absl::Hours(1));
  });
  waiting.WaitForNotification();
  EXPECT_FALSE(signal.cancelled());
  signal.Cancel();
  waiter.join();  // would hang for an hour if Cancel did not wake it
  EXPECT_TRUE(signal.cancelled());
  EXPECT_EQ(signal.WaitForChange(signal.Version(), absl::Hours(1)), 0u);  // at once
  signal.Cancel();  // idempotent
}

}  // namespace
}  // namespace ferry::concurrency
