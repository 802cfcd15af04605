// RollbackService against fakes.
#include "services/deployer/rollback_service.h"

#include <gtest/gtest.h>

#include "tests/deployer/logic_harness.h"

namespace ferry::deployer {
namespace {

using testing::LogicHarness;
using testing::LogicPlan;

class RollbackServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Two releases: v1 (objects a) then v2 (objects a and b).
    ASSERT_TRUE(h_.deployer->HandlePlan(LogicPlan("p1", "web", {"a"}, std::string(40, '1'))).ok());
    h_.deployer->WaitIdle();
    ASSERT_TRUE(h_.deployer->HandlePlan(LogicPlan("p2", "web", {"a", "b"}, std::string(40, '2'))).ok());
    h_.deployer->WaitIdle();
    ASSERT_EQ(h_.StateOf("dep-p2"), v1::DEPLOYMENT_STATE_SUCCEEDED);
  }

  v1::RollbackRequest Request() {
    v1::RollbackRequest req;
    req.set_application_id("web");
    req.set_environment_id("dev");
    req.mutable_actor()->set_kind(v1::ACTOR_KIND_USER);
    req.mutable_actor()->set_id("alice");
    req.set_comment("v2 is slow");
    return req;
  }

  LogicHarness h_;
};

TEST_F(RollbackServiceTest, WithoutThePlannerTheStoredManifestsOfThePreviousReleaseAreRestoredAndPinned) {
  absl::StatusOr<v1::RollbackResponse> out = h_.deployer->Rollback(Request());
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(h_.plans.revisions().size(), 1u) << "the planner was not asked first";
  h_.deployer->WaitIdle();
  const std::string id = out->deployment().id();
  absl::StatusOr<v1::Deployment> d = h_.store.Get(id, false);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->kind(), v1::DEPLOYMENT_KIND_ROLLBACK);
  EXPECT_EQ(d->state(), v1::DEPLOYMENT_STATE_SUCCEEDED);
  EXPECT_EQ(d->restored_deployment_id(), "dep-p1");
  EXPECT_EQ(d->revision().sha(), std::string(40, '1'));
  absl::StatusOr<std::vector<AppliedObject>> applied = h_.store.Applied("web", "dev");
  ASSERT_TRUE(applied.ok());
  ASSERT_EQ(applied->size(), 1u) << "the object v1 did not have was not pruned";
  EXPECT_EQ(applied->at(0).object.key.name, "a");
  EXPECT_TRUE(out->pin().pinned());
  EXPECT_EQ(out->pin().sha(), std::string(40, '1'));
  EXPECT_EQ(out->pin().deployment_id(), id);
  EXPECT_TRUE(h_.store.GetPin("web", "dev")->pinned());
}

TEST_F(RollbackServiceTest, ThroughThePlannerTheRollbackPlanIsTakenLikeAnyOther) {
  v1::Plan plan = LogicPlan("p-rb", "web", {"a"}, std::string(40, '1'));
  plan.set_trigger(v1::PLAN_TRIGGER_ROLLBACK);
  plan.set_rollback_to_deployment_id("dep-p1");
  h_.plans.set_revision_plan(plan);
  absl::StatusOr<v1::RollbackResponse> out = h_.deployer->Rollback(Request());
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(h_.plans.revisions().size(), 1u);
  EXPECT_EQ(h_.plans.revisions()[0].revision().sha(), std::string(40, '1'));
  EXPECT_EQ(h_.plans.revisions()[0].rollback_to_deployment_id(), "dep-p1");
  EXPECT_EQ(out->plan_id(), "p-rb");
  h_.deployer->WaitIdle();
  EXPECT_EQ(h_.StateOf("dep-p-rb"), v1::DEPLOYMENT_STATE_SUCCEEDED);
  EXPECT_TRUE(h_.store.GetPin("web", "dev")->pinned()) << "the rollback was not pinned";
}

TEST_F(RollbackServiceTest, RollingBackToWhatIsLiveIsRefused) {
  v1::RollbackRequest req = Request();
  req.set_deployment_id("dep-p2");
  EXPECT_EQ(h_.deployer->Rollback(req).status().code(), absl::StatusCode::kFailedPrecondition);
  req.set_deployment_id("dep-none");
  EXPECT_EQ(h_.deployer->Rollback(req).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(h_.store.GetPin("web", "dev")->pinned());
}

}  // namespace
}  // namespace ferry::deployer
