// DeploymentScheduler, alone and as the Deployer uses it, against fakes.
#include "services/deployer/deployment_scheduler.h"

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <thread>

#include "tests/deployer/logic_harness.h"

namespace ferry::deployer {
namespace {

using testing::Eventually;
using testing::LogicHarness;
using testing::LogicPlan;

TEST(DeploymentSchedulerTest, SlotsAreBoundedAndAFreedSlotWakesAWaiter) {
  testing::FakeDeploymentStore locks;
  DeploymentScheduler scheduler(&locks, 2);
  ASSERT_TRUE(scheduler.ReserveSlot("a"));
  ASSERT_TRUE(scheduler.TryReserveSlot("b"));
  EXPECT_FALSE(scheduler.TryReserveSlot("c")) << "a third slot was handed out";
  EXPECT_TRUE(scheduler.InFlight("a"));
  std::atomic<bool> got{false};
  std::thread waiter([&] { got = scheduler.ReserveSlot("c"); });
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_FALSE(got.load());
  scheduler.ReleaseSlot("a");
  waiter.join();
  EXPECT_TRUE(got.load());
  EXPECT_FALSE(scheduler.InFlight("a"));
  EXPECT_TRUE(scheduler.InFlight("c"));
  scheduler.ReleaseSlot("b");
  scheduler.ReleaseSlot("c");
  scheduler.WaitIdle();
}

TEST(DeploymentSchedulerTest, ALockIsExclusiveAndItsReleaseWakesAWaiterAtOnce) {
  testing::FakeDeploymentStore locks;
  // A retry period far longer than the test: only the release can wake it.
  DeploymentScheduler scheduler(&locks, 4, absl::Hours(1));
  absl::StatusOr<std::unique_ptr<AppLock>> first = scheduler.TryLock("web", "dev");
  ASSERT_TRUE(first.ok() && *first);
  absl::StatusOr<std::unique_ptr<AppLock>> second = scheduler.TryLock("web", "dev");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, nullptr);
  absl::StatusOr<std::unique_ptr<AppLock>> other = scheduler.TryLock("api", "dev");
  EXPECT_TRUE(other.ok() && *other) << "one application's lock held another's";
  std::unique_ptr<AppLock> acquired;
  std::thread waiter([&] { acquired = scheduler.AcquireLock("web", "dev"); });
  absl::SleepFor(absl::Milliseconds(50));
  first->reset();
  waiter.join();
  EXPECT_NE(acquired, nullptr);
}

// A deployment job that throws is logged and its slot and application lock
// are released like a returning job's (before RunGuarded: std::terminate).
TEST(DeploymentSchedulerTest, AThrowingJobReleasesItsSlotAndLock) {
  testing::FakeDeploymentStore locks;
  DeploymentScheduler scheduler(&locks, 1, absl::Hours(1));
  absl::StatusOr<std::unique_ptr<AppLock>> lock = scheduler.TryLock("web", "dev");
  ASSERT_TRUE(lock.ok() && *lock);
  ASSERT_TRUE(scheduler.ReserveSlot("d1"));
  std::shared_ptr<AppLock> held(std::move(*lock));
  scheduler.Spawn("d1", [held = std::move(held)] { throw std::runtime_error("job blew up"); });
  scheduler.WaitIdle();
  EXPECT_FALSE(scheduler.InFlight("d1"));
  absl::StatusOr<std::unique_ptr<AppLock>> again = scheduler.TryLock("web", "dev");
  EXPECT_TRUE(again.ok() && *again) << "the throwing job kept its application lock";
  ASSERT_TRUE(scheduler.TryReserveSlot("d2")) << "the throwing job kept its slot";
  scheduler.Spawn("d2", [] { throw 42; });
  scheduler.WaitIdle();
  EXPECT_FALSE(scheduler.InFlight("d2"));
}

TEST(DeploymentSchedulerTest, StopEndsWaitsForSlotsAndLocks) {
  testing::FakeDeploymentStore locks;
  DeploymentScheduler scheduler(&locks, 1, absl::Hours(1));
  ASSERT_TRUE(scheduler.ReserveSlot("a"));
  absl::StatusOr<std::unique_ptr<AppLock>> held = scheduler.TryLock("web", "dev");
  ASSERT_TRUE(held.ok() && *held);
  std::atomic<bool> slot{true};
  std::unique_ptr<AppLock> lock = std::make_unique<AppLock>();
  std::thread slot_waiter([&] { slot = scheduler.ReserveSlot("b"); });
  std::thread lock_waiter([&] { lock = scheduler.AcquireLock("web", "dev"); });
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_TRUE(scheduler.Stop());
  slot_waiter.join();
  lock_waiter.join();
  EXPECT_FALSE(slot.load());
  EXPECT_EQ(lock, nullptr);
  EXPECT_FALSE(scheduler.Stop()) << "Stop is idempotent";
}

TEST(DeploymentSchedulerTest, ALockHandedToAWorkerIsReleasedBeforeWaitIdleReturns) {
  testing::FakeDeploymentStore locks;
  DeploymentScheduler scheduler(&locks, 4);
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<std::unique_ptr<AppLock>> lock = scheduler.TryLock("web", "dev");
    ASSERT_TRUE(lock.ok() && *lock) << "round " << i << ": the last worker's lock was still held";
    std::shared_ptr<AppLock> held(std::move(*lock));
    scheduler.Spawn("d" + std::to_string(i), [held] {});
    held.reset();
    scheduler.WaitIdle();
  }
}

// Set by a job on the thread it ran on: a fresh thread sees 0.
thread_local int worker_marker = 0;

// A commit touching 10,000 applications ran 10,000 deployments, each on a
// thread of its own (issue #23): a finished worker now takes a later one
// (concurrency::WorkerThreads), never making a deployment wait for another,
// and a waiting worker ends its wait when the scheduler stops (the
// destructor below would hang an hour).
TEST(DeploymentSchedulerTest, AFinishedWorkerRunsALaterDeploymentWithoutMakingItWait) {
  testing::FakeDeploymentStore locks;
  auto scheduler = std::make_unique<DeploymentScheduler>(&locks, 4, absl::Hours(1), absl::Hours(1));
  scheduler->Spawn("d0", [] { worker_marker = 1; });
  scheduler->WaitIdle();
  // WaitIdle returns before the worker waits again: until it does, a
  // deployment gets a new thread.
  std::atomic<int> seen{0};
  for (int i = 1; i < 200 && seen.load() != 1; ++i) {
    absl::SleepFor(absl::Milliseconds(5));
    scheduler->Spawn("d" + std::to_string(i), [&] { seen = worker_marker; });
    scheduler->WaitIdle();
  }
  EXPECT_EQ(seen.load(), 1) << "every deployment ran on a new thread";
  // Two at once: the second must not queue behind the first (it would
  // never run: the first waits for it).
  std::atomic<bool> second_ran{false};
  scheduler->Spawn("a", [&] {
    absl::Time give_up = absl::Now() + absl::Seconds(30);
    while (!second_ran.load() && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
  });
  scheduler->Spawn("b", [&] { second_ran = true; });
  scheduler->WaitIdle();
  EXPECT_TRUE(second_ran.load());
  scheduler.reset();  // Stop() and Join() with workers waiting.
}

TEST(DeploymentSchedulerTest, DeploymentsOfOneApplicationRunOneAtATime) {
  LogicHarness h;
  h.target.HoldApplies("web");
  absl::StatusOr<std::string> first = h.deployer->HandlePlan(LogicPlan("p1", "web", {"a"}, std::string(40, '1')));
  absl::StatusOr<std::string> second = h.deployer->HandlePlan(LogicPlan("p2", "web", {"a"}, std::string(40, '2')));
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_TRUE(h.target.WaitHeld("web", absl::Seconds(5)));
  absl::SleepFor(absl::Milliseconds(100));
  int running = (h.StateOf(*first) == v1::DEPLOYMENT_STATE_RUNNING) + (h.StateOf(*second) == v1::DEPLOYMENT_STATE_RUNNING);
  EXPECT_EQ(running, 1);
  h.target.ReleaseApplies("web");
  h.deployer->WaitIdle();
  EXPECT_EQ(h.StateOf(*first), v1::DEPLOYMENT_STATE_SUCCEEDED);
  EXPECT_EQ(h.StateOf(*second), v1::DEPLOYMENT_STATE_SUCCEEDED);
  EXPECT_EQ(h.target.max_concurrent_applies("web"), 1);
  EXPECT_EQ(h.target.applied("web").size(), 2u);
}

TEST(DeploymentSchedulerTest, NoMoreThanMaxConcurrentDeploymentsRunAndTheRestWait) {
  DeployerOptions o = LogicHarness::Options();
  o.max_concurrent_deployments = 2;
  LogicHarness h(o);
  for (const char* app : {"a", "b", "c"}) h.target.HoldApplies(app);
  ASSERT_TRUE(h.deployer->HandlePlan(LogicPlan("pa", "a", {"x"})).ok());
  ASSERT_TRUE(h.deployer->HandlePlan(LogicPlan("pb", "b", {"x"})).ok());
  // The third waits for a slot before it is even recorded.
  absl::StatusOr<std::string> third;
  std::thread intake([&] { third = h.deployer->HandlePlan(LogicPlan("pc", "c", {"x"})); });
  ASSERT_TRUE(h.target.WaitHeld("a", absl::Seconds(5)));
  ASSERT_TRUE(h.target.WaitHeld("b", absl::Seconds(5)));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(h.StateOf("dep-pc"), v1::DEPLOYMENT_STATE_UNSPECIFIED);
  h.target.ReleaseApplies("a");
  intake.join();
  ASSERT_TRUE(third.ok()) << third.status();
  ASSERT_TRUE(h.target.WaitHeld("c", absl::Seconds(5)));
  h.target.ReleaseApplies("b");
  h.target.ReleaseApplies("c");
  h.deployer->WaitIdle();
  EXPECT_EQ(h.target.max_concurrent_applies(), 2);
  for (const char* id : {"dep-pa", "dep-pb", "dep-pc"}) EXPECT_EQ(h.StateOf(id), v1::DEPLOYMENT_STATE_SUCCEEDED) << id;
}

}  // namespace
}  // namespace ferry::deployer
