// OrphanRecovery through the Deployer, against fakes: a deployment
// interrupted by a restart is resumed and finished, never failed or pinned
// for it; one that takes its deployer down every time is quarantined and
// the application's later plans run.
#include "services/deployer/orphan_recovery.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/deployer/logic_harness.h"

namespace ferry::deployer {
namespace {

using testing::LogicHarness;
using testing::LogicPlan;

std::string Sha(char c) { return std::string(40, c); }

// The reproduction of issue 15 ("a restart is taken for a failed commit"):
// the deployer restarts during a rollout; the restarted one marked it
// FAILED, rolled back and pinned the application, so every later automatic
// plan was skipped (held PINNED).
TEST(OrphanRecoveryTest, ARolloutInterruptedByARestartIsResumedAndLaterPlansStillDeploy) {
  LogicHarness h;
  h.target.TrackLiveState();
  ASSERT_EQ(h.deployer->HandlePlan(LogicPlan("p1", "web", {"a", "b"}, Sha('1'))).value_or(""), "dep-p1");
  h.deployer->WaitIdle();
  ASSERT_EQ(h.StateOf("dep-p1"), v1::DEPLOYMENT_STATE_SUCCEEDED);

  h.target.HoldApplies("web");
  ASSERT_EQ(h.deployer->HandlePlan(LogicPlan("p2", "web", {"a", "b"}, Sha('2'))).value_or(""), "dep-p2");
  ASSERT_TRUE(h.target.WaitHeld("web", absl::Seconds(5)));
  h.Restart();  // Stops mid-apply: dep-p2 is left RUNNING.
  ASSERT_EQ(h.StateOf("dep-p2"), v1::DEPLOYMENT_STATE_RUNNING);
  h.target.ReleaseApplies("web");

  h.deployer->RecoverOrphans();
  h.deployer->WaitIdle();
  absl::StatusOr<v1::Deployment> d = h.store.Get("dep-p2", true);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->state(), v1::DEPLOYMENT_STATE_SUCCEEDED) << d->message();
  EXPECT_TRUE(d->recovered());
  EXPECT_FALSE(h.store.GetPin("web", "dev")->pinned()) << h.store.GetPin("web", "dev")->reason();
  EXPECT_EQ(h.CountAction(v1::AUDIT_ACTION_DEPLOYMENT_ROLLED_BACK), 0);
  EXPECT_EQ(h.CountAction(v1::AUDIT_ACTION_PINNED), 0);
  const v1::Plan p2 = LogicPlan("p2", "web", {"a", "b"}, Sha('2'));
  for (const v1::Manifest& m : p2.manifests()) {
    EXPECT_EQ(h.target.live("web", ObjectKey::FromProto(m.object())), m.json());
  }
  h.deployer->ReportOutcomes();
  ASSERT_FALSE(h.plans.results().empty());
  EXPECT_EQ(h.plans.results().back().plan_id(), "p2");
  EXPECT_EQ(h.plans.results().back().state(), v1::PLAN_STATE_SUCCEEDED);

  // The next automatic plan is not held: it deploys.
  EXPECT_EQ(h.deployer->HandlePlan(LogicPlan("p3", "web", {"a", "b"}, Sha('3'))).value_or(""), "dep-p3");
  h.deployer->WaitIdle();
  EXPECT_EQ(h.StateOf("dep-p3"), v1::DEPLOYMENT_STATE_SUCCEEDED);
}

TEST(OrphanRecoveryTest, ADeploymentThatCrashesItsDeployerEveryTimeIsQuarantinedAndTheNextPlanRuns) {
  LogicHarness h;
  h.target.TrackLiveState();
  ASSERT_EQ(h.deployer->HandlePlan(LogicPlan("p1", "web", {"a"}, Sha('1'))).value_or(""), "dep-p1");
  h.deployer->WaitIdle();
  // Applying "poison" takes the deployer process down, before anything changes.
  h.target.SetGate([&h](const TargetObject& o) {
    if (o.key.name != "poison") return true;
    h.store.CrashAfterWrites(0);
    return false;
  });
  ASSERT_EQ(h.deployer->HandlePlan(LogicPlan("p2", "web", {"poison"}, Sha('2'))).value_or(""), "dep-p2");
  h.deployer->WaitIdle();
  int restarts = 0;
  while (h.StateOf("dep-p2") == v1::DEPLOYMENT_STATE_RUNNING && restarts < 6) {
    h.Restart();
    h.store.Revive();
    ++restarts;
    h.deployer->RecoverOrphans();
    h.deployer->WaitIdle();
  }
  // The first run and the first recovery died without progress; the second
  // recovery quarantines it.
  EXPECT_EQ(restarts, 2);
  absl::StatusOr<v1::Deployment> d = h.store.Get("dep-p2", true);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->state(), v1::DEPLOYMENT_STATE_FAILED);
  EXPECT_NE(d->message().find("quarantined after 2 attempts"), std::string::npos) << d->message();
  EXPECT_FALSE(h.store.GetPin("web", "dev")->pinned());
  h.deployer->ReportOutcomes();
  ASSERT_FALSE(h.plans.results().empty());
  EXPECT_EQ(h.plans.results().back().plan_id(), "p2");
  EXPECT_EQ(h.plans.results().back().state(), v1::PLAN_STATE_FAILED);
  EXPECT_NE(h.plans.results().back().message().find("quarantined"), std::string::npos);

  EXPECT_EQ(h.deployer->HandlePlan(LogicPlan("p3", "web", {"a"}, Sha('3'))).value_or(""), "dep-p3");
  h.deployer->WaitIdle();
  EXPECT_EQ(h.StateOf("dep-p3"), v1::DEPLOYMENT_STATE_SUCCEEDED);
}

TEST(OrphanRecoveryTest, ADeploymentWhoseSpecCannotBeReadIsFailedWithTheReasonAndBlocksNothing) {
  LogicHarness h;
  v1::Deployment d;
  d.set_id("dep-p1");
  d.set_application_id("web");
  d.set_environment_id("dev");
  d.set_plan_id("p1");
  d.set_kind(v1::DEPLOYMENT_KIND_ROLLOUT);
  d.set_state(v1::DEPLOYMENT_STATE_RUNNING);
  ASSERT_TRUE(h.store.Create(d, LogicPlan("p1", "web", {"a"}, Sha('1')), {}).ok());
  h.store.FailGetSpec("dep-p1", absl::DataLossError("stored deployment spec does not parse"));
  h.deployer->RecoverOrphans();
  h.deployer->WaitIdle();
  absl::StatusOr<v1::Deployment> failed = h.store.Get("dep-p1", false);
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->state(), v1::DEPLOYMENT_STATE_FAILED);
  EXPECT_NE(failed->message().find("stored deployment spec does not parse"), std::string::npos) << failed->message();
  EXPECT_TRUE(h.store.Unfinished()->empty());
  // Its outcome is reported (a running deployment would hold back every report of the application).
  h.deployer->ReportOutcomes();
  ASSERT_EQ(h.plans.results().size(), 1u);
  EXPECT_EQ(h.plans.results()[0].state(), v1::PLAN_STATE_FAILED);
}

}  // namespace
}  // namespace ferry::deployer
