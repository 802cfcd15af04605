// The revision stream consumer over in-memory fakes: no PostgreSQL. The
// consumer's waits run on a fake clock, so backoffs are checked, not slept.
#include "services/planner/revision_consumer.h"

#include <gtest/gtest.h>

#include "tests/planner/planner_fakes.h"
#include "tests/support/fake_clock.h"

namespace ferry::planner {
namespace {

using testing::AppSpec;
using testing::ConfigMap;
using testing::EnvSpec;
using testing::kRef;
using testing::PlannerOverFakes;
using testing::User;
using LoopClock = ferry::testing::FakeClock;

TEST(RevisionConsumerTest, AFailedRevisionIsRetriedAfterABackoffAndTheCursorMovesOnlyAfterIt) {
  PlannerOverFakes f;
  ASSERT_TRUE(f.planner.CreateEnvironment(EnvSpec("local", v1::APPROVAL_POLICY_AUTO), User("alice")).ok());
  ASSERT_TRUE(f.planner.CreateApplication(AppSpec("a", "apps/a", {"local"}), User("alice")).ok());
  f.repo.Commit("repo", kRef, {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}}});
  f.live.FailWith(absl::InternalError("deployer broken"));
  LoopClock clock;
  RevisionConsumer consumer(&f.repo, &f.store, f.planner.revision_planner(), &clock);
  consumer.Start();
  clock.AwaitSleeps(1);  // the revision failed: backing off
  EXPECT_EQ(clock.SleepingUntil(), clock.Now() + absl::Milliseconds(500));
  EXPECT_TRUE(f.Plans("a").empty());
  EXPECT_EQ(*f.store.GetCursor(RevisionConsumer::kCursorName), "") << "a failed revision does not move the cursor";
  clock.Advance(absl::Milliseconds(500));
  clock.AwaitSleeps(2);  // failed again: the backoff doubles
  EXPECT_EQ(clock.SleepingUntil(), clock.Now() + absl::Seconds(1));
  EXPECT_TRUE(f.Plans("a").empty());
  f.live.FailWith(absl::OkStatus());
  clock.Advance(absl::Seconds(1));
  f.repo.AwaitWaitingStream();  // planned, and waiting for the next revision
  EXPECT_EQ(f.Plans("a").size(), 1u) << "retried";
  EXPECT_EQ(*f.store.GetCursor(RevisionConsumer::kCursorName), "1");
  consumer.Stop();
  EXPECT_EQ(f.repo.watches(), 3);
  consumer.Stop();  // idempotent
}

TEST(RevisionConsumerTest, AStreamThatEndsQuicklyIsReopenedWithBackoffAndAHealthyOneAtOnce) {
  PlannerOverFakes f;
  LoopClock clock;
  RevisionConsumer consumer(&f.repo, &f.store, f.planner.revision_planner(), &clock);
  consumer.Start();
  f.repo.AwaitWaitingStream();
  f.repo.DropStreams();
  clock.AwaitSleeps(1);
  EXPECT_EQ(clock.SleepingUntil(), clock.Now() + absl::Milliseconds(500));
  clock.Advance(absl::Milliseconds(500));
  f.repo.AwaitWaitingStream();
  f.repo.DropStreams();
  clock.AwaitSleeps(2);
  EXPECT_EQ(clock.SleepingUntil(), clock.Now() + absl::Seconds(1)) << "ended quickly again: the backoff doubles";
  clock.Advance(absl::Seconds(1));
  f.repo.AwaitWaitingStream();
  clock.Advance(RevisionConsumer::kHealthyStream + absl::Seconds(1));
  f.repo.DropStreams();
  clock.AwaitSleeps(3);
  EXPECT_EQ(clock.SleepingUntil(), clock.Now() + absl::Milliseconds(500)) << "a healthy stream reconnects at once";
  clock.Advance(absl::Milliseconds(500));
  f.repo.AwaitWaitingStream();
  f.repo.DropStreams();
  clock.AwaitSleeps(4);
  EXPECT_EQ(clock.SleepingUntil(), clock.Now() + absl::Milliseconds(500)) << "and the backoff started over";
  consumer.Stop();
  EXPECT_EQ(f.repo.watches(), 4);
}

TEST(RevisionConsumerTest, StopCancelsTheOpenStream) {
  PlannerOverFakes f;
  LoopClock clock;
  RevisionConsumer consumer(&f.repo, &f.store, f.planner.revision_planner(), &clock);
  consumer.Start();
  f.repo.AwaitWaitingStream();
  consumer.Stop();  // returns: the stream blocked in Next was cancelled
  EXPECT_EQ(f.repo.watches(), 1) << "no stream was opened again";
  // The cancelled stream may end the step before the loop learns it is
  // stopping, so one backoff may begin (and is cut short by Stop).
  EXPECT_LE(clock.sleeps(), 1u);
}

}  // namespace
}  // namespace ferry::planner
