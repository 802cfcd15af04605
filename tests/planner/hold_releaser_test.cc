// The hold releaser's loop over the in-memory store, on a fake clock.
#include "services/planner/hold_releaser.h"

#include <gtest/gtest.h>

#include "tests/planner/planner_fakes.h"
#include "tests/support/fake_clock.h"

namespace ferry::planner {
namespace {

using testing::At;
using testing::EnvSpec;
using testing::FakePlannerStore;

TEST(HoldReleaserTest, ReleasesAPlanOnTheFirstPassAfterItsSyncWindowOpensAndKeepsTheInterval) {
  FakePlannerStore store;
  ferry::testing::FakeClock clock(At(26, 18));
  concurrency::ChangeSignal notifier;
  HoldEvaluator holds(&store, &store, &clock, &notifier);
  v1::Environment env = testing::WindowedEnv("windowed");
  ConfigChange change;
  change.create_environments.push_back(env);
  ASSERT_TRUE(store.ApplyConfigChange(change).ok());
  v1::Plan plan;
  plan.set_application_id("web");
  plan.set_environment_id("windowed");
  plan.set_state(v1::PLAN_STATE_APPROVED);
  Hold hold = *holds.ComputeHold(plan, env);
  ASSERT_EQ(hold.reason, v1::HOLD_REASON_SYNC_WINDOW_CLOSED);
  plan.set_hold_reason(hold.reason);
  plan.set_hold_message(hold.message);
  ASSERT_TRUE(store.InsertPlan(plan, "k", false, false, nullptr, nullptr).ok());

  const absl::Duration interval = absl::Seconds(15);
  HoldReleaser releaser(&holds, interval, &clock);
  releaser.Start();
  clock.AwaitSleeps(1);
  EXPECT_EQ(clock.SleepingUntil(), At(26, 18) + interval) << "the first pass comes one interval after Start";
  clock.Advance(interval);
  clock.AwaitSleeps(2);  // one pass done: the window is still closed
  EXPECT_EQ(clock.SleepingUntil(), clock.Now() + interval);
  EXPECT_TRUE(store.ListReleased(0, 10, 1 << 20)->empty());
  const uint64_t seen = notifier.Version();
  clock.Set(At(27, 9) + absl::Minutes(10));  // the window is open; the pass is due
  clock.AwaitSleeps(3);
  EXPECT_EQ(clock.SleepingUntil(), clock.Now() + interval);
  EXPECT_EQ(store.ListReleased(0, 10, 1 << 20)->size(), 1u);
  EXPECT_GT(notifier.Version(), seen) << "streams woken";
  releaser.Stop();
  releaser.Stop();  // idempotent
}

}  // namespace
}  // namespace ferry::planner
