// PlanConsumer through the Deployer, against fakes.
#include "services/deployer/plan_consumer.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "tests/deployer/logic_harness.h"

namespace ferry::deployer {
namespace {

using testing::Eventually;
using testing::LogicHarness;
using testing::LogicPlan;

TEST(PlanConsumerTest, ReleasedPlansAreDeployedAndTheCursorMovesOverThem) {
  LogicHarness h;
  h.plans.Release("0001", LogicPlan("p1", "web", {"a"}));
  h.plans.Release("0002", LogicPlan("p2", "api", {"a"}));
  h.deployer->Start();
  EXPECT_TRUE(Eventually([&] {
    return h.StateOf("dep-p1") == v1::DEPLOYMENT_STATE_SUCCEEDED &&
           h.StateOf("dep-p2") == v1::DEPLOYMENT_STATE_SUCCEEDED;
  }));
  EXPECT_TRUE(Eventually([&] { return h.store.GetCursor().value_or("") == "0002"; }));
  EXPECT_TRUE(Eventually([&] { return h.plans.results().size() == 2; })) << "outcomes were not reported";
  // Plans of different applications are handed off in parallel: the
  // acknowledgements may come in either order.
  ASSERT_EQ(h.plans.acks().size(), 2u);
  std::set<std::string> acked;
  for (const auto& ack : h.plans.acks()) {
    acked.insert(ack.deployment_id());
    EXPECT_EQ(ack.deployer_id(), "test");
  }
  EXPECT_EQ(acked, (std::set<std::string>{"dep-p1", "dep-p2"}));
}

// Issue #23: a commit touching 10,000 applications hands off 10,000 plans.
// Each hand-off reads its record and the pin at once, and each run its
// record again (another replica may have run it), the pin and the applied
// objects at once: two reads, not five (Get, GetPin; Get, GetPin, Applied).
TEST(PlanConsumerTest, APlanIsTakenAndRunWithTwoReadsOfTheStore) {
  LogicHarness h;
  const int before = h.store.record_reads();
  ASSERT_EQ(h.deployer->HandlePlan(LogicPlan("p1", "web", {"a", "b"})).value_or(""), "dep-p1");
  h.deployer->WaitIdle();
  EXPECT_EQ(h.store.record_reads() - before, 2);
  EXPECT_EQ(h.StateOf("dep-p1"), v1::DEPLOYMENT_STATE_SUCCEEDED);
  EXPECT_EQ(h.target.applied("web").size(), 2u);
}

TEST(PlanConsumerTest, AFailedStreamIsRetriedAfterABackoffThatDoubles) {
  LogicHarness h;  // plan_retry 10 ms, tick 1 s
  h.store.FailCursor(absl::UnavailableError("database down"));
  const absl::Time start = h.clock.Now();
  h.deployer->Start();
  // Asleep: the maintenance loop until its first tick, the plan loop after
  // its first failure for plan_retry.
  h.clock.AwaitSleeps(2);
  EXPECT_EQ(h.store.cursor_reads(), 1);
  h.clock.Advance(absl::Milliseconds(10));
  h.clock.AwaitSleeps(3);
  EXPECT_EQ(h.store.cursor_reads(), 2);
  EXPECT_EQ(h.clock.SleepingUntil(), start + absl::Milliseconds(10 + 20)) << "the second wait doubles";
  h.clock.Advance(absl::Milliseconds(19));
  EXPECT_EQ(h.store.cursor_reads(), 2) << "retried before the backoff passed";
  h.store.FailCursor(absl::OkStatus());
  h.plans.Release("0001", LogicPlan("p1", "web", {"a"}));
  h.clock.Advance(absl::Milliseconds(1));
  EXPECT_TRUE(Eventually([&] { return h.StateOf("dep-p1") == v1::DEPLOYMENT_STATE_SUCCEEDED; }));
  EXPECT_EQ(h.store.cursor_reads(), 3);
}

TEST(PlanConsumerTest, ARedeliveredPlanIsTakenOnce) {
  LogicHarness h;
  ASSERT_EQ(h.deployer->HandlePlan(LogicPlan("p1", "web", {"a"})).value_or(""), "dep-p1");
  h.deployer->WaitIdle();
  ASSERT_EQ(h.deployer->HandlePlan(LogicPlan("p1", "web", {"a"})).value_or(""), "dep-p1");
  h.deployer->WaitIdle();
  EXPECT_EQ(h.plans.acks().size(), 1u);
  EXPECT_EQ(h.target.applied("web").size(), 1u);
}

// The plan stream and a Rollback call that asked the planner for the plan
// take it at once: the second finds no record yet, then loses the insert.
// It is the same deployment, not an error (it failed the Rollback call with
// "duplicate key" before).
TEST(PlanConsumerTest, APlanTakenTwiceAtOnceIsOneDeploymentAndNoError) {
  LogicHarness h;
  ASSERT_EQ(h.deployer->HandlePlan(LogicPlan("p1", "web", {"a"})).value_or(""), "dep-p1");
  h.deployer->WaitIdle();
  h.store.MissNextGet("dep-p1");
  absl::StatusOr<std::string> again = h.deployer->HandlePlan(LogicPlan("p1", "web", {"a"}));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, "dep-p1");
  h.deployer->WaitIdle();
  EXPECT_EQ(h.target.applied("web").size(), 1u);
}

TEST(PlanConsumerTest, APlanTheTargetRefusesFailsBeforeAnythingChangesAndIsReported) {
  LogicHarness h;
  v1::Plan plan = LogicPlan("p1", "web", {"a"});
  plan.mutable_manifests(0)->mutable_object()->set_kind("Refused");
  absl::StatusOr<std::string> id = h.deployer->HandlePlan(plan);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(h.StateOf(*id), v1::DEPLOYMENT_STATE_FAILED);
  EXPECT_TRUE(h.target.applied("web").empty());
  ASSERT_EQ(h.plans.results().size(), 1u);
  EXPECT_EQ(h.plans.results()[0].state(), v1::PLAN_STATE_FAILED);
}

// A refusal is one write: the deployment is created FAILED with its event.
// Recorded PENDING first, a refusal whose FAILED update did not follow (the
// process died, or a replica whose lease was not taken yet had its fenced
// update refused) left a PENDING record that recovery then ran from the
// unprepared spec: in the hostile-repository test a contentFrom that
// escaped the application folder was deployed as an empty file.
TEST(PlanConsumerTest, ARefusedPlanIsCreatedFailedInOneWriteSoRecoveryNeverRunsIt) {
  LogicHarness h;
  v1::Plan plan = LogicPlan("p1", "web", {"a"});
  plan.mutable_manifests(0)->mutable_object()->set_kind("Refused");
  h.store.CrashAfterWrites(1);  // the refusal's first write is the last
  h.deployer->HandlePlan(plan).IgnoreError();
  h.deployer->WaitIdle();
  h.store.Revive();
  h.Restart();
  h.deployer->RecoverOrphans();
  h.deployer->WaitIdle();
  EXPECT_TRUE(h.target.applied("web").empty()) << "a deployment its target refused was run";
  absl::StatusOr<v1::Deployment> d = h.store.Get("dep-p1", false);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->state(), v1::DEPLOYMENT_STATE_FAILED) << d->message();
  EXPECT_NE(d->message().find("refused before anything changed: kind Refused is refused"), std::string::npos)
      << d->message();
  EXPECT_EQ(h.CountAction(v1::AUDIT_ACTION_DEPLOYMENT_FAILED), 1);
  EXPECT_EQ(h.CountAction(v1::AUDIT_ACTION_DEPLOYMENT_STARTED), 0);
}

TEST(PlanConsumerTest, APlanWithoutIdsIsRefused) {
  LogicHarness h;
  v1::Plan plan = LogicPlan("p1", "", {"a"});
  EXPECT_EQ(h.deployer->HandlePlan(plan).status().code(), absl::StatusCode::kInvalidArgument);
  plan = LogicPlan("", "web", {"a"});
  EXPECT_EQ(h.deployer->HandlePlan(plan).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(h.plans.acks().empty());
}

TEST(PlanConsumerTest, APlanThatCannotBeStartedIsRecordedFailedAndThePlansBehindItFlow) {
  LogicHarness h;
  // p1's deployment cannot be stored with its manifests (say, too large):
  // every try fails the same way.
  h.store.FailCreateWithManifests("dep-p1", absl::InternalError("value too long for the deployments table"));
  h.plans.Release("0001", LogicPlan("p1", "web", {"a"}));
  h.plans.Release("0002", LogicPlan("p2", "web", {"a"}, std::string(40, 'b')));
  h.plans.Release("0003", LogicPlan("p3", "api", {"a"}));
  h.deployer->Start();
  EXPECT_TRUE(Eventually([&] {
    return h.StateOf("dep-p2") == v1::DEPLOYMENT_STATE_SUCCEEDED &&
           h.StateOf("dep-p3") == v1::DEPLOYMENT_STATE_SUCCEEDED;
  })) << "the plans behind the one that cannot be started were held up";
  absl::StatusOr<v1::Deployment> failed = h.store.Get("dep-p1", false);
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_EQ(failed->state(), v1::DEPLOYMENT_STATE_FAILED);
  EXPECT_NE(failed->message().find("could not be started: value too long"), std::string::npos) << failed->message();
  EXPECT_TRUE(Eventually([&] { return h.store.GetCursor().value_or("") == "0003"; }));
  EXPECT_TRUE(Eventually([&] {
    for (const auto& r : h.plans.results()) {
      if (r.plan_id() == "p1") return r.state() == v1::PLAN_STATE_FAILED;
    }
    return false;
  })) << "p1's failure was not reported";
  bool audited = false;
  for (const v1::Event& e : h.store.events()) {
    audited |= e.action() == v1::AUDIT_ACTION_DEPLOYMENT_FAILED && e.subject().deployment_id() == "dep-p1";
  }
  EXPECT_TRUE(audited);
}

TEST(PlanConsumerTest, APlanThatCannotBeTakenIsGivenUpOnAfterItsAttemptsAndReportedFailed) {
  LogicHarness h;
  // Every try of p1 fails the same way, and not for an outage.
  h.store.FailGetPin("web", absl::InternalError("pin record does not parse"));
  h.plans.Release("0001", LogicPlan("p1", "web", {"a"}));
  h.plans.Release("0002", LogicPlan("p2", "api", {"a"}));
  h.deployer->Start();
  EXPECT_TRUE(Eventually([&] { return h.StateOf("dep-p2") == v1::DEPLOYMENT_STATE_SUCCEEDED; }));
  // p1 is retried with backoff (10 ms, 20 ms), then given up on.
  for (int i = 0; i < 50 && h.store.GetCursor().value_or("") != "0002"; ++i) {
    h.clock.Advance(absl::Milliseconds(10));
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(h.store.GetCursor().value_or(""), "0002") << "the cursor stayed before the plan that cannot be taken";
  EXPECT_EQ(h.StateOf("dep-p1"), v1::DEPLOYMENT_STATE_UNSPECIFIED);
  bool reported = false;
  for (const auto& r : h.plans.results()) {
    if (r.plan_id() != "p1") continue;
    reported = true;
    EXPECT_EQ(r.state(), v1::PLAN_STATE_FAILED);
    EXPECT_NE(r.message().find("pin record does not parse"), std::string::npos) << r.message();
  }
  EXPECT_TRUE(reported);
}

}  // namespace
}  // namespace ferry::deployer
