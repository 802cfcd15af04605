// Hold rules against the in-memory store: no PostgreSQL.
#include "services/planner/hold_evaluator.h"

#include <gtest/gtest.h>

#include "tests/planner/planner_fakes.h"

namespace ferry::planner {
namespace {

using testing::At;
using testing::EnvSpec;
using testing::FakeClock;
using testing::FakePlannerStore;

class HoldEvaluatorTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(testing::AddLocalAndProd(store_).ok()); }

  v1::Plan Insert(const std::string& app, const std::string& env, v1::PlanState state, const std::string& sha,
                  v1::HoldReason hold = v1::HOLD_REASON_UNSPECIFIED, std::vector<std::string> after = {}) {
    return testing::InsertPlan(store_, app, env, state, sha, hold, std::move(after));
  }

  FakePlannerStore store_;
  FakeClock clock_{At(26, 12)};
  concurrency::ChangeSignal notifier_;
  HoldEvaluator holds_{&store_, &store_, &clock_, &notifier_};
};

TEST_F(HoldEvaluatorTest, PromotionGateComesFirstAndOpensWhenTheRevisionSucceededUpstream) {
  v1::Environment prod = *store_.GetEnvironment("prod");
  v1::Plan plan;
  plan.set_application_id("web");
  plan.set_environment_id("prod");
  plan.set_state(v1::PLAN_STATE_PENDING);
  plan.mutable_target_revision()->set_sha("abc");
  auto hold = holds_.ComputeHold(plan, prod);
  ASSERT_TRUE(hold.ok());
  EXPECT_EQ(hold->reason, v1::HOLD_REASON_PROMOTION_GATE);
  EXPECT_NE(hold->message.find("has not been deployed healthy in environment \"local\""), std::string::npos);
  plan.set_trigger(v1::PLAN_TRIGGER_ROLLBACK);
  EXPECT_EQ(holds_.ComputeHold(plan, prod)->reason, v1::HOLD_REASON_AWAITING_APPROVAL) << "a rollback skips the gate";
  plan.set_trigger(v1::PLAN_TRIGGER_NEW_REVISION);
  Insert("web", "local", v1::PLAN_STATE_SUCCEEDED, "abc");
  EXPECT_EQ(*holds_.PromotionGate("web", prod, "abc"), std::nullopt);
  EXPECT_EQ(holds_.ComputeHold(plan, prod)->reason, v1::HOLD_REASON_AWAITING_APPROVAL);
  plan.set_hold_reason(v1::HOLD_REASON_PINNED);
  plan.set_hold_message("pinned at abc");
  EXPECT_EQ(holds_.ComputeHold(plan, prod)->reason, v1::HOLD_REASON_PINNED) << "a pin stays until approved";
  plan.set_state(v1::PLAN_STATE_APPROVED);
  EXPECT_EQ(holds_.ComputeHold(plan, prod)->reason, v1::HOLD_REASON_UNSPECIFIED);
}

TEST_F(HoldEvaluatorTest, AnApprovedPlanWaitsForItsDependenciesFollowingSupersededPlans) {
  v1::Environment local = *store_.GetEnvironment("local");
  v1::Plan db = Insert("db", "local", v1::PLAN_STATE_APPROVED, "s1");
  v1::Plan web;
  web.set_application_id("web");
  web.set_environment_id("local");
  web.set_state(v1::PLAN_STATE_APPROVED);
  web.add_after_plan_ids(db.id());
  auto hold = holds_.ComputeHold(web, local);
  EXPECT_EQ(hold->reason, v1::HOLD_REASON_DEPENDENCY);
  EXPECT_NE(hold->message.find("waiting for plan " + db.id()), std::string::npos) << hold->message;
  // db's plan is superseded by a newer one: web waits for that one.
  v1::Plan newer = Insert("db", "local", v1::PLAN_STATE_APPROVED, "s2");
  ASSERT_TRUE(store_
                  .MutatePlan(db.id(),
                              [&](v1::Plan& p) -> absl::StatusOr<std::vector<v1::Event>> {
                                p.set_state(v1::PLAN_STATE_SUPERSEDED);
                                p.set_superseded_by_plan_id(newer.id());
                                return std::vector<v1::Event>{};
                              })
                  .ok());
  hold = holds_.ComputeHold(web, local);
  EXPECT_NE(hold->message.find("waiting for plan " + newer.id()), std::string::npos) << hold->message;
  ASSERT_TRUE(store_
                  .MutatePlan(newer.id(),
                              [&](v1::Plan& p) -> absl::StatusOr<std::vector<v1::Event>> {
                                p.set_state(v1::PLAN_STATE_SUCCEEDED);
                                return std::vector<v1::Event>{};
                              })
                  .ok());
  EXPECT_EQ(holds_.ComputeHold(web, local)->reason, v1::HOLD_REASON_UNSPECIFIED);
  web.add_after_plan_ids("plan-999");
  EXPECT_EQ(holds_.ComputeHold(web, local)->reason, v1::HOLD_REASON_UNSPECIFIED) << "a vanished plan holds nothing";
}

TEST_F(HoldEvaluatorTest, ReevaluationReleasesAPlanWhenItsSyncWindowOpens) {
  v1::Environment env = testing::WindowedEnv("windowed");
  ConfigChange change;
  change.create_environments.push_back(env);
  ASSERT_TRUE(store_.ApplyConfigChange(change).ok());
  clock_.Set(At(26, 18));
  v1::Plan plan;
  plan.set_application_id("web");
  plan.set_environment_id("windowed");
  plan.set_state(v1::PLAN_STATE_APPROVED);
  Hold hold = *holds_.ComputeHold(plan, env);
  EXPECT_EQ(hold.reason, v1::HOLD_REASON_SYNC_WINDOW_CLOSED);
  EXPECT_NE(hold.message.find("opens at 2026-11-27T09:00:00Z"), std::string::npos) << hold.message;
  plan.set_hold_reason(hold.reason);
  plan.set_hold_message(hold.message);
  v1::Plan stored = *store_.InsertPlan(plan, "k", false, false, nullptr, nullptr);
  EXPECT_TRUE(store_.ListReleased(0, 10, 1 << 20)->empty());

  const uint64_t generation = notifier_.Version();
  EXPECT_EQ(*holds_.ReevaluateHolds(), 0);
  EXPECT_EQ(notifier_.Version(), generation) << "nothing released, nobody woken";
  clock_.Set(At(27, 9) + absl::Minutes(10));
  EXPECT_EQ(*holds_.ReevaluateHolds(), 1);
  EXPECT_GT(notifier_.Version(), generation);
  auto released = *store_.ListReleased(0, 10, 1 << 20);
  ASSERT_EQ(released.size(), 1u);
  EXPECT_EQ(released[0].plan.id(), stored.id());
  EXPECT_EQ(released[0].plan.hold_reason(), v1::HOLD_REASON_UNSPECIFIED);
  EXPECT_EQ(*holds_.ReevaluateHolds(), 0) << "a released plan is not evaluated again";
}

}  // namespace
}  // namespace ferry::planner
