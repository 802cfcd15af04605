// Plan lifecycle transitions against the in-memory store: no PostgreSQL.
#include "services/planner/plan_lifecycle.h"

#include <gtest/gtest.h>

#include "tests/planner/planner_fakes.h"

namespace ferry::planner {
namespace {

using testing::EnvSpec;
using testing::FakeApprovalPolicy;
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
  FakeApprovalPolicy approvals_;
  std::vector<std::string> promoted_;
  int promote_calls_ = 0;
  PlanLifecycle lifecycle_{&store_, &store_, &holds_, &approvals_, &clock_, &notifier_,
                           [this](const std::vector<v1::Plan>& plans) {
                             ++promote_calls_;
                             for (const v1::Plan& p : plans) promoted_.push_back(p.id());
                             return absl::StatusOr<int>(0);
                           }};
};

// A PENDING plan in prod (its promotion gate open), requested by `requester`,
// of a commit by `author` ("" = unknown).
v1::Plan PendingProdPlan(FakePlannerStore& store, const std::string& requester, const std::string& author_name,
                         const std::string& author_email) {
  testing::InsertPlan(store, "web", "local", v1::PLAN_STATE_SUCCEEDED, "abc");
  v1::Plan p;
  p.set_application_id("web");
  p.set_environment_id("prod");
  p.set_state(v1::PLAN_STATE_PENDING);
  p.set_trigger(v1::PLAN_TRIGGER_EXPLICIT_REVISION);
  p.mutable_target_revision()->set_sha("abc");
  p.set_hold_reason(v1::HOLD_REASON_AWAITING_APPROVAL);
  *p.mutable_requested_by() = User(requester);
  p.mutable_target_author()->set_name(author_name);
  p.mutable_target_author()->set_email(author_email);
  return *store.InsertPlan(p, "key-abc", false, false, nullptr, nullptr);
}

std::vector<std::string> Approvers(const v1::Plan& p) {
  std::vector<std::string> ids;
  for (const auto& a : p.approvals()) ids.push_back(a.actor().id());
  return ids;
}

TEST_F(PlanLifecycleTest, APlanNeedingTwoApprovalsIsApprovedAtTheSecondDistinctApprover) {
  approvals_.Set("prod", testing::Rule(2));
  v1::Plan p = PendingProdPlan(store_, "alice", "Alice", "alice@example.com");
  auto first = lifecycle_.ApprovePlan(p.id(), User("bob"), "fine by me");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->state(), v1::PLAN_STATE_PENDING) << "one of two";
  EXPECT_EQ(first->hold_reason(), v1::HOLD_REASON_AWAITING_APPROVAL);
  EXPECT_NE(first->hold_message().find("1 approval recorded"), std::string::npos) << first->hold_message();
  EXPECT_EQ(Approvers(*first), std::vector<std::string>{"bob"});
  EXPECT_EQ(first->approvals(0).comment(), "fine by me");
  EXPECT_FALSE(first->has_decision());
  EXPECT_TRUE(ReleasedIds().empty());
  EXPECT_EQ(store_.CountEvents(v1::AUDIT_ACTION_PLAN_APPROVAL_RECORDED), 1);
  EXPECT_EQ(store_.CountEvents(v1::AUDIT_ACTION_PLAN_APPROVED), 0);
  EXPECT_NE(store_.LastEvent(v1::AUDIT_ACTION_PLAN_APPROVAL_RECORDED).message().find("1 of 2 approvals"),
            std::string::npos);

  // The same approver again counts once, and is told so.
  auto again = lifecycle_.ApprovePlan(p.id(), User("bob"), "");
  EXPECT_TRUE(absl::IsAlreadyExists(again.status())) << again.status();
  EXPECT_NE(again.status().message().find("counts once (1 of 2 approvals recorded)"), std::string::npos)
      << again.status();
  EXPECT_EQ(Approvers(*store_.GetPlan(p.id())), std::vector<std::string>{"bob"});
  EXPECT_EQ(store_.CountEvents(v1::AUDIT_ACTION_PLAN_APPROVAL_RECORDED), 1);
  EXPECT_EQ(store_.GetPlan(p.id())->state(), v1::PLAN_STATE_PENDING);

  auto second = lifecycle_.ApprovePlan(p.id(), User("carol"), "ship it");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->state(), v1::PLAN_STATE_APPROVED);
  EXPECT_EQ(second->hold_reason(), v1::HOLD_REASON_UNSPECIFIED);
  EXPECT_EQ(Approvers(*second), (std::vector<std::string>{"bob", "carol"}));
  EXPECT_EQ(second->decision().actor().id(), "carol");
  EXPECT_EQ(ReleasedIds(), std::vector<std::string>{p.id()});
  EXPECT_EQ(store_.CountEvents(v1::AUDIT_ACTION_PLAN_APPROVED), 1);
  EXPECT_NE(store_.LastEvent(v1::AUDIT_ACTION_PLAN_APPROVED).message().find("2 of 2 approvals"), std::string::npos);
  EXPECT_TRUE(absl::IsFailedPrecondition(lifecycle_.ApprovePlan(p.id(), User("dave"), "").status()));
}

TEST_F(PlanLifecycleTest, TheRequesterIsRefusedWhenTheRuleWantsAnotherApprover) {
  approvals_.Set("prod", testing::Rule(1, /*distinct_from_author=*/false, /*distinct_from_requester=*/true));
  v1::Plan p = PendingProdPlan(store_, "alice", "Someone", "someone@example.com");
  auto own = lifecycle_.ApprovePlan(p.id(), User("alice"), "my own");
  EXPECT_TRUE(absl::IsPermissionDenied(own.status())) << own.status();
  EXPECT_NE(own.status().message().find("distinct_from_requester"), std::string::npos) << own.status();
  EXPECT_EQ(store_.GetPlan(p.id())->state(), v1::PLAN_STATE_PENDING);
  EXPECT_EQ(store_.GetPlan(p.id())->approvals_size(), 0) << "a refused approval is not recorded";
  EXPECT_EQ(store_.CountEvents(v1::AUDIT_ACTION_ACCESS_DENIED), 1);
  auto other = lifecycle_.ApprovePlan(p.id(), User("bob"), "");
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->state(), v1::PLAN_STATE_APPROVED);
}

TEST_F(PlanLifecycleTest, TheCommitsAuthorIsRefusedByEMailOrNameWhenTheRuleSaysSo) {
  approvals_.Set("prod", testing::Rule(1, /*distinct_from_author=*/true));
  v1::Plan p = PendingProdPlan(store_, "ferry", "Alice Doe", "Alice@Example.com");
  for (const char* author : {"alice@example.com", "ALICE DOE"}) {
    auto own = lifecycle_.ApprovePlan(p.id(), User(author), "");
    EXPECT_TRUE(absl::IsPermissionDenied(own.status())) << author << ": " << own.status();
    EXPECT_NE(own.status().message().find("distinct_from_author"), std::string::npos) << own.status();
  }
  EXPECT_EQ(store_.GetPlan(p.id())->state(), v1::PLAN_STATE_PENDING);
  auto other = lifecycle_.ApprovePlan(p.id(), User("bob@example.com"), "");
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->state(), v1::PLAN_STATE_APPROVED);
}

TEST_F(PlanLifecycleTest, APlanWhoseAuthorIsUnknownCannotBeApprovedUnderTheAuthorRule) {
  approvals_.Set("prod", testing::Rule(1, /*distinct_from_author=*/true));
  v1::Plan p = PendingProdPlan(store_, "ferry", "", "");
  auto approved = lifecycle_.ApprovePlan(p.id(), User("bob"), "");
  EXPECT_TRUE(absl::IsPermissionDenied(approved.status())) << approved.status();
  EXPECT_NE(approved.status().message().find("does not know that commit's author"), std::string::npos)
      << approved.status();
}

TEST_F(PlanLifecycleTest, ARejectionRejectsAtOnceWhileApprovalsAreMissing) {
  approvals_.Set("prod", testing::Rule(3));
  v1::Plan p = PendingProdPlan(store_, "alice", "Alice", "alice@example.com");
  ASSERT_TRUE(lifecycle_.ApprovePlan(p.id(), User("bob"), "").ok());
  auto rejected = lifecycle_.RejectPlan(p.id(), User("carol"), "no");
  ASSERT_TRUE(rejected.ok()) << rejected.status();
  EXPECT_EQ(rejected->state(), v1::PLAN_STATE_REJECTED);
  EXPECT_EQ(Approvers(*rejected), std::vector<std::string>{"bob"}) << "the approvals stay on record";
  EXPECT_TRUE(absl::IsFailedPrecondition(lifecycle_.ApprovePlan(p.id(), User("dave"), "").status()));
  EXPECT_TRUE(ReleasedIds().empty());
}

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

// Issue #23: the deployer reported each outcome alone, and each terminal one
// made the planner read every unreleased plan again: at 10,000 applications
// one pass over held plans per outcome. A reporting pass's results come in
// one call, each answered on its own, and held plans are re-evaluated once.
TEST_F(PlanLifecycleTest, SeveralResultsAreEachTakenAsAloneAndHeldPlansAreReevaluatedOnce) {
  v1::Plan web = Insert("web", "local", v1::PLAN_STATE_APPROVED, "abc");
  v1::Plan api = Insert("api", "local", v1::PLAN_STATE_APPROVED, "abc");
  v1::Plan db = Insert("db", "local", v1::PLAN_STATE_APPROVED, "abc");
  v1::Plan cache = Insert("cache", "local", v1::PLAN_STATE_APPROVED, "abc", v1::HOLD_REASON_DEPENDENCY, {db.id()});
  for (const v1::Plan* p : {&web, &api, &db}) {
    v1::AcknowledgePlanRequest ack;
    ack.set_plan_id(p->id());
    ack.set_deployment_id("d-" + p->application_id());
    ASSERT_TRUE(lifecycle_.AcknowledgePlan(ack)->proceed());
  }
  auto result = [](const v1::Plan& p, const std::string& deployment, v1::PlanState state) {
    v1::ReportPlanResultRequest r;
    r.set_plan_id(p.id());
    r.set_deployment_id(deployment);
    r.set_state(state);
    r.set_message("done");
    return r;
  };
  v1::Plan unknown;
  unknown.set_id("no-such-plan");
  const int passes = store_.UnreleasedReads();
  absl::StatusOr<std::vector<absl::Status>> taken = lifecycle_.ReportPlanResults(
      {result(web, "d-web", v1::PLAN_STATE_SUCCEEDED), result(api, "d-other", v1::PLAN_STATE_FAILED),
       result(db, "d-db", v1::PLAN_STATE_SUCCEEDED), result(unknown, "d-x", v1::PLAN_STATE_SUCCEEDED),
       result(api, "d-api", v1::PLAN_STATE_REJECTED)});
  ASSERT_TRUE(taken.ok()) << taken.status();
  ASSERT_EQ(taken->size(), 5u);
  EXPECT_TRUE((*taken)[0].ok()) << (*taken)[0];
  EXPECT_TRUE(absl::IsFailedPrecondition((*taken)[1])) << (*taken)[1];
  EXPECT_TRUE((*taken)[2].ok()) << (*taken)[2];
  EXPECT_TRUE(absl::IsNotFound((*taken)[3])) << (*taken)[3];
  EXPECT_TRUE(absl::IsInvalidArgument((*taken)[4])) << (*taken)[4];
  EXPECT_EQ(store_.GetPlan(web.id())->state(), v1::PLAN_STATE_SUCCEEDED);
  EXPECT_EQ(store_.GetPlan(api.id())->state(), v1::PLAN_STATE_EXECUTING) << "a refused result changed its plan";
  EXPECT_EQ(store_.GetPlan(db.id())->state(), v1::PLAN_STATE_SUCCEEDED);
  EXPECT_EQ(promoted_, (std::vector<std::string>{web.id(), db.id()}));
  EXPECT_EQ(promote_calls_, 1) << "the batch's successes are promoted together";
  EXPECT_EQ(store_.GetPlan(cache.id())->hold_reason(), v1::HOLD_REASON_UNSPECIFIED) << "db's dependant is released";
  EXPECT_EQ(store_.UnreleasedReads() - passes, 1) << "held plans were re-evaluated once per result";
  // Repeated, the batch is answered as the first time (the plans' results
  // are already theirs), and nothing is re-evaluated when none is terminal.
  taken = lifecycle_.ReportPlanResults({result(web, "d-web", v1::PLAN_STATE_SUCCEEDED)});
  ASSERT_TRUE(taken.ok());
  EXPECT_TRUE((*taken)[0].ok()) << (*taken)[0];
  const int after = store_.UnreleasedReads();
  taken = lifecycle_.ReportPlanResults({result(api, "d-api", v1::PLAN_STATE_EXECUTING)});
  ASSERT_TRUE(taken.ok());
  EXPECT_TRUE((*taken)[0].ok()) << (*taken)[0];
  EXPECT_EQ(store_.UnreleasedReads(), after) << "no result was terminal";
  std::vector<v1::ReportPlanResultRequest> too_many(PlanLifecycle::kMaxReportedResults + 1,
                                                    result(web, "d-web", v1::PLAN_STATE_SUCCEEDED));
  EXPECT_TRUE(absl::IsInvalidArgument(lifecycle_.ReportPlanResults(too_many).status()));
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
