// Plan lifecycle transitions against the in-memory store: no PostgreSQL.
#include "services/planner/plan_lifecycle.h"

#include <gtest/gtest.h>

#include "tests/planner/planner_fakes.h"

namespace ferry::planner {
namespace {

using testing::EnvSpec;
using testing::FakeClock;
using testing::FakePlannerStore;
using testing::User;

class PlanLifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(testing::AddLocalAndProd(store_).ok()); }

  v1::Plan Insert(const std::string& app, const std::string& env, v1::PlanState state, const std::string& sha,
                  v1::HoldReason hold = v1::HOLD_REASON_UNSPECIFIED, std::vector<std::string> after = {}) {
    return testing::InsertPlan(store_, app, env, state, sha, hold, std::move(after));
  }
  void Succeed(const std::string& id) {
    ASSERT_TRUE(store_
                    .MutatePlan(id,
                                [](v1::Plan& p) -> absl::StatusOr<std::vector<v1::Event>> {
                                  p.set_state(v1::PLAN_STATE_SUCCEEDED);
                                  return std::vector<v1::Event>{};
                                })
                    .ok());
  }
  std::vector<std::string> ReleasedIds() {
    std::vector<std::string> ids;
    absl::StatusOr<std::vector<ReleasedPlan>> released = lifecycle_.ReleasedAfter("", 100);
    EXPECT_TRUE(released.ok()) << released.status();
    for (auto& rp : *released) ids.push_back(rp.plan.id());
    return ids;
  }

  FakePlannerStore store_;
  FakeClock clock_{absl::FromCivil(absl::CivilMinute(2026, 11, 26, 12, 0), absl::UTCTimeZone())};
  concurrency::ChangeSignal notifier_;
  HoldEvaluator holds_{&store_, &store_, &clock_, &notifier_};
  std::vector<std::string> promoted_;
  PlanLifecycle lifecycle_{&store_, &store_, &holds_, &clock_, &notifier_, [this](const v1::Plan& p) {
                             promoted_.push_back(p.id());
                             return absl::StatusOr<int>(0);
                           }};
};

TEST_F(PlanLifecycleTest, ApprovingReleasesAPendingPlanOnce) {
  Insert("web", "local", v1::PLAN_STATE_SUCCEEDED, "abc");
  v1::Plan p = Insert("web", "prod", v1::PLAN_STATE_PENDING, "abc", v1::HOLD_REASON_AWAITING_APPROVAL);
  EXPECT_TRUE(absl::IsInvalidArgument(lifecycle_.ApprovePlan(p.id(), v1::Actor(), "").status()));
  EXPECT_TRUE(ReleasedIds().empty());
  const uint64_t generation = notifier_.Version();
  auto approved = lifecycle_.ApprovePlan(p.id(), User("bob"), "looks good");
  ASSERT_TRUE(approved.ok()) << approved.status();
  EXPECT_EQ(approved->state(), v1::PLAN_STATE_APPROVED);
  EXPECT_EQ(approved->hold_reason(), v1::HOLD_REASON_UNSPECIFIED);
  EXPECT_EQ(approved->decision().actor().id(), "bob");
  EXPECT_EQ(approved->decision().comment(), "looks good");
  EXPECT_FALSE(approved->decision().automatic());
  EXPECT_GT(notifier_.Version(), generation);
  EXPECT_EQ(ReleasedIds(), std::vector<std::string>{p.id()});
  auto again = lifecycle_.ApprovePlan(p.id(), User("bob"), "");
  EXPECT_TRUE(absl::IsFailedPrecondition(again.status())) << again.status();
  EXPECT_EQ(store_.CountEvents(v1::AUDIT_ACTION_PLAN_APPROVED), 1);
  EXPECT_TRUE(absl::IsNotFound(lifecycle_.ApprovePlan("plan-404", User("bob"), "").status()));
}

TEST_F(PlanLifecycleTest, ApprovingIsRefusedWhileThePromotionGateIsClosed) {
  v1::Plan p = Insert("web", "prod", v1::PLAN_STATE_PENDING, "abc", v1::HOLD_REASON_PROMOTION_GATE);
  auto approved = lifecycle_.ApprovePlan(p.id(), User("bob"), "");
  EXPECT_TRUE(absl::IsFailedPrecondition(approved.status())) << approved.status();
  EXPECT_NE(approved.status().message().find("promotion gate"), std::string::npos);
  EXPECT_EQ(store_.GetPlan(p.id())->state(), v1::PLAN_STATE_PENDING);
}

TEST_F(PlanLifecycleTest, RejectingClosesOnlyAPendingPlan) {
  v1::Plan p = Insert("web", "local", v1::PLAN_STATE_PENDING, "abc", v1::HOLD_REASON_AWAITING_APPROVAL);
  auto rejected = lifecycle_.RejectPlan(p.id(), User("carol"), "not today");
  ASSERT_TRUE(rejected.ok()) << rejected.status();
  EXPECT_EQ(rejected->state(), v1::PLAN_STATE_REJECTED);
  EXPECT_EQ(rejected->hold_reason(), v1::HOLD_REASON_UNSPECIFIED);
  EXPECT_TRUE(absl::IsFailedPrecondition(lifecycle_.ApprovePlan(p.id(), User("bob"), "").status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(lifecycle_.RejectPlan(p.id(), User("bob"), "").status()));
  EXPECT_EQ(store_.CountEvents(v1::AUDIT_ACTION_PLAN_REJECTED), 1);
}

TEST_F(PlanLifecycleTest, APlanIsClaimedByOneDeploymentOnly) {
  v1::Plan held = Insert("api", "local", v1::PLAN_STATE_APPROVED, "abc", v1::HOLD_REASON_SYNC_WINDOW_CLOSED);
  v1::Plan p = Insert("web", "local", v1::PLAN_STATE_APPROVED, "abc");
  v1::AcknowledgePlanRequest ack;
  ack.set_plan_id(p.id());
  EXPECT_TRUE(absl::IsInvalidArgument(lifecycle_.AcknowledgePlan(ack).status()));
  ack.set_deployment_id("d1");
  auto first = lifecycle_.AcknowledgePlan(ack);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->proceed());
  EXPECT_EQ(first->state(), v1::PLAN_STATE_EXECUTING);
  EXPECT_TRUE(lifecycle_.AcknowledgePlan(ack)->proceed()) << "the same deployment may ask again";
  ack.set_deployment_id("d2");
  auto second = lifecycle_.AcknowledgePlan(ack);
  EXPECT_FALSE(second->proceed());
  EXPECT_EQ(second->reason(), "plan already claimed by deployment d1");
  ack.set_plan_id(held.id());
  auto on_hold = lifecycle_.AcknowledgePlan(ack);
  EXPECT_FALSE(on_hold->proceed());
  EXPECT_EQ(on_hold->state(), v1::PLAN_STATE_APPROVED);
}

TEST_F(PlanLifecycleTest, OnlyTheClaimingDeploymentReportsAndSuccessPromotesAndReleasesDependants) {
  v1::Plan db = Insert("db", "local", v1::PLAN_STATE_APPROVED, "abc");
  v1::Plan web = Insert("web", "local", v1::PLAN_STATE_APPROVED, "abc", v1::HOLD_REASON_DEPENDENCY, {db.id()});
  EXPECT_EQ(ReleasedIds(), std::vector<std::string>{db.id()});
  v1::ReportPlanResultRequest rep;
  rep.set_plan_id(db.id());
  rep.set_deployment_id("d1");
  rep.set_state(v1::PLAN_STATE_SUCCEEDED);
  EXPECT_TRUE(absl::IsFailedPrecondition(lifecycle_.ReportPlanResult(rep).status())) << "not claimed by d1";
  v1::AcknowledgePlanRequest ack;
  ack.set_plan_id(db.id());
  ack.set_deployment_id("d1");
  ASSERT_TRUE(lifecycle_.AcknowledgePlan(ack)->proceed());
  rep.set_state(v1::PLAN_STATE_REJECTED);
  EXPECT_TRUE(absl::IsInvalidArgument(lifecycle_.ReportPlanResult(rep).status()));
  rep.set_state(v1::PLAN_STATE_SUCCEEDED);
  rep.set_deployment_id("d2");
  EXPECT_TRUE(absl::IsFailedPrecondition(lifecycle_.ReportPlanResult(rep).status()));
  rep.set_deployment_id("d1");
  auto done = lifecycle_.ReportPlanResult(rep);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state(), v1::PLAN_STATE_SUCCEEDED);
  EXPECT_EQ(promoted_, std::vector<std::string>{db.id()});
  EXPECT_EQ(store_.GetPlan(web.id())->hold_reason(), v1::HOLD_REASON_UNSPECIFIED) << "its dependant is released";
  EXPECT_EQ(ReleasedIds(), std::vector<std::string>{web.id()}) << "finished plans leave the stream";
}

TEST_F(PlanLifecycleTest, AFailureIsRecordedWithItsMessageAndPromotesNothing) {
  v1::Plan p = Insert("web", "local", v1::PLAN_STATE_APPROVED, "abc");
  v1::AcknowledgePlanRequest ack;
  ack.set_plan_id(p.id());
  ack.set_deployment_id("d1");
  ASSERT_TRUE(lifecycle_.AcknowledgePlan(ack)->proceed());
  v1::ReportPlanResultRequest rep;
  rep.set_plan_id(p.id());
  rep.set_deployment_id("d1");
  rep.set_state(v1::PLAN_STATE_FAILED);
  rep.set_message("health check timed out");
  auto failed = lifecycle_.ReportPlanResult(rep);
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_EQ(failed->failure().message(), "health check timed out");
  EXPECT_TRUE(lifecycle_.ReportPlanResult(rep).ok()) << "a repeated report is accepted";
  rep.set_state(v1::PLAN_STATE_SUCCEEDED);
  EXPECT_TRUE(absl::IsFailedPrecondition(lifecycle_.ReportPlanResult(rep).status()));
  EXPECT_TRUE(promoted_.empty());
}

TEST_F(PlanLifecycleTest, ReadsShowTheBasicViewAndRefuseForeignTokens) {
  v1::Plan p;
  p.set_application_id("web");
  p.set_environment_id("local");
  p.set_state(v1::PLAN_STATE_PENDING);
  p.add_manifests()->set_json("{}");
  p.add_actions()->set_unified_diff("+x");
  p = *store_.InsertPlan(p, "k", false, false, nullptr, nullptr);
  EXPECT_EQ(lifecycle_.GetPlan(p.id(), v1::PLAN_VIEW_FULL)->manifests_size(), 1);
  v1::Plan basic = *lifecycle_.GetPlan(p.id(), v1::PLAN_VIEW_BASIC);
  EXPECT_EQ(basic.manifests_size(), 0);
  EXPECT_EQ(basic.actions(0).unified_diff(), "");
  v1::ListPlansRequest req;
  req.set_page_token("x");
  EXPECT_TRUE(absl::IsInvalidArgument(lifecycle_.ListPlans(req).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(lifecycle_.ReleasedAfter("-1", 10).status()));
  req.clear_page_token();
  EXPECT_EQ(lifecycle_.ListPlans(req)->plans(0).manifests_size(), 0) << "basic unless FULL is asked";
}

}  // namespace
}  // namespace ferry::planner
