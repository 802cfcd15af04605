#include "common/clock/clock.h"

#include <gtest/gtest.h>

#include <thread>

#include "absl/synchronization/notification.h"
#include "tests/support/fake_clock.h"

namespace ferry {
namespace {

TEST(SystemAlarmTest, SleepEndsAtTheDeadline) {
  SystemClock clock;
  auto alarm = clock.NewAlarm();
  const absl::Time start = clock.Now();
  EXPECT_FALSE(alarm->SleepUntil(start + absl::Milliseconds(20)));
  EXPECT_GE(clock.Now(), start + absl::Milliseconds(20));
  EXPECT_FALSE(alarm->SleepUntil(start));  // already passed
}

TEST(SystemAlarmTest, WakeBeforeTheSleepEndsItAtOnceAndIsUsedUp) {
  SystemClock clock;
  auto alarm = clock.NewAlarm();
  alarm->Wake();
  EXPECT_TRUE(alarm->SleepUntil(absl::InfiniteFuture()));
  EXPECT_FALSE(alarm->SleepUntil(clock.Now() + absl::Milliseconds(1)));
}

TEST(SystemAlarmTest, WakeFromAnotherThreadEndsTheSleep) {
  SystemClock clock;
  auto alarm = clock.NewAlarm();
  std::thread waker([&] { alarm->Wake(); });
  EXPECT_TRUE(alarm->SleepUntil(absl::InfiniteFuture()));
  waker.join();
}

TEST(FakeClockTest, SleepersWakeWhenTimeIsAdvancedToTheirDeadline) {
  testing::FakeClock clock;
  const absl::Time start = clock.Now();
  auto alarm = clock.NewAlarm();
  absl::Notification done;
  std::thread sleeper([&] {
    EXPECT_FALSE(alarm->SleepUntil(start + absl::Seconds(10)));
    done.Notify();
  });
  clock.AwaitSleeps(1);
  EXPECT_EQ(clock.SleepingUntil(), start + absl::Seconds(10));
  clock.Advance(absl::Seconds(9));
  clock.Advance(absl::Seconds(1));
  sleeper.join();
  EXPECT_TRUE(done.HasBeenNotified());
  EXPECT_EQ(clock.Now(), start + absl::Seconds(10));
}

TEST(FakeClockTest, WakeEndsASleepWithoutTimeMoving) {
  testing::FakeClock clock;
  auto alarm = clock.NewAlarm();
  std::thread sleeper([&] { EXPECT_TRUE(alarm->SleepUntil(absl::InfiniteFuture())); });
  clock.AwaitSleeps(1);
  alarm->Wake();
  sleeper.join();
  EXPECT_EQ(clock.sleeps(), 1u);
}

}  // namespace
}  // namespace ferry
