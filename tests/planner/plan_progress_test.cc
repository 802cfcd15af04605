#include "services/planner/plan_progress.h"

#include <gtest/gtest.h>

namespace ferry::planner {
namespace {

v1::Plan FullPlan() {
  v1::Plan p;
  p.set_id("plan-1");
  p.set_application_id("app");
  p.set_state(v1::PLAN_STATE_FAILED);
  p.set_deployment_id("dep-1");
  p.mutable_update_time()->set_seconds(100);
  p.mutable_update_time()->set_nanos(5);
  p.mutable_failure()->set_message("unhealthy");
  p.mutable_failure()->set_line(3);
  p.set_hold_message("held");
  p.add_manifests()->set_json("{}");
  p.mutable_create_time()->set_seconds(50);
  return p;
}

TEST(PlanProgressTest, TheProgressHoldsStateDeploymentUpdateTimeAndFailureOnly) {
  const v1::Plan progress = ProgressOf(FullPlan());
  v1::Plan expected;
  expected.set_state(v1::PLAN_STATE_FAILED);
  expected.set_deployment_id("dep-1");
  expected.mutable_update_time()->set_seconds(100);
  expected.mutable_update_time()->set_nanos(5);
  expected.mutable_failure()->set_message("unhealthy");
  expected.mutable_failure()->set_line(3);
  EXPECT_EQ(progress.SerializeAsString(), expected.SerializeAsString());
}

TEST(PlanProgressTest, SetProgressReplacesEveryProgressFieldAndNothingElse) {
  v1::Plan plan = FullPlan();
  v1::Plan progress;
  progress.set_state(v1::PLAN_STATE_EXECUTING);
  progress.mutable_update_time()->set_seconds(200);  // nanos 0, failure and deployment unset
  SetProgress(progress, plan);
  EXPECT_EQ(plan.state(), v1::PLAN_STATE_EXECUTING);
  EXPECT_EQ(plan.update_time().seconds(), 200);
  EXPECT_EQ(plan.update_time().nanos(), 0);
  EXPECT_FALSE(plan.has_failure());
  EXPECT_EQ(plan.deployment_id(), "");
  EXPECT_EQ(plan.hold_message(), "held");
  EXPECT_EQ(plan.manifests_size(), 1);
  EXPECT_EQ(plan.create_time().seconds(), 50);
}

// The store writes a plan as two encodings, its body without its progress
// and its progress, and reads their concatenation: it must parse as the plan.
TEST(PlanProgressTest, ABodyWithoutItsProgressThenItsProgressParseAsThePlan) {
  v1::Plan plan = FullPlan();
  const std::string whole = plan.SerializeAsString();
  v1::Plan progress;
  MoveProgress(plan, progress);
  EXPECT_EQ(plan.state(), v1::PLAN_STATE_UNSPECIFIED);
  EXPECT_EQ(plan.deployment_id(), "");
  EXPECT_FALSE(plan.has_update_time());
  EXPECT_FALSE(plan.has_failure());
  v1::Plan read;
  ASSERT_TRUE(read.ParseFromString(plan.SerializeAsString() + progress.SerializeAsString()));
  EXPECT_EQ(read.SerializeAsString(), whole);
  // Moved back, the plan is whole again.
  MoveProgress(progress, plan);
  EXPECT_EQ(plan.SerializeAsString(), whole);
  EXPECT_EQ(progress.ByteSizeLong(), 0u);
}

}  // namespace
}  // namespace ferry::planner
