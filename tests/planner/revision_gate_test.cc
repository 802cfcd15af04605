// Revisions a request names but may not use (RevisionGate), through the
// planner's front over in-memory fakes: a commit the repository's signature
// policy refuses (PlanRevision with approve or as a ROLLBACK, PreviewPlan)
// and a rollback to a revision never deployed in that environment. Each is
// refused before anything is planned, with an audit event.
#include "services/planner/revision_gate.h"

#include <gtest/gtest.h>

#include "tests/planner/planner_fakes.h"

namespace ferry::planner {
namespace {

using testing::AppSpec;
using testing::ConfigMap;
using testing::EnvSpec;
using testing::kRef;
using testing::PlannerOverFakes;
using testing::User;

class RevisionGateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(f_.planner.CreateEnvironment(EnvSpec("local", v1::APPROVAL_POLICY_AUTO), User("alice")).ok());
    ASSERT_TRUE(f_.planner.CreateEnvironment(EnvSpec("prod", v1::APPROVAL_POLICY_MANUAL), User("alice")).ok());
    v1::Application app = AppSpec("a", "apps/a", {"local", "prod"});
    app.mutable_sync_policy()->set_automated(false);  // plans only when asked
    ASSERT_TRUE(f_.planner.CreateApplication(app, User("alice")).ok());
  }
  v1::Revision Commit(const std::string& value) {
    return f_.repo.Commit("repo", kRef, {{"apps/a/cm.yaml", {ConfigMap("a", value), ""}}});
  }
  v1::PlanRevisionRequest Request(const std::string& env, const std::string& sha, v1::PlanTrigger trigger) {
    v1::PlanRevisionRequest req;
    req.set_application_id("a");
    req.set_environment_id(env);
    req.mutable_revision()->set_sha(sha);
    req.set_trigger(trigger);
    *req.mutable_actor() = User("bob");
    req.set_approve(true);
    return req;
  }
  // Plans `sha` in `env` as an approved explicit revision and deploys it the
  // way the deployer does: acknowledge, apply, report SUCCEEDED.
  void Deploy(const std::string& env, const std::string& sha) {
    auto planned = f_.planner.PlanRevision(Request(env, sha, v1::PLAN_TRIGGER_EXPLICIT_REVISION));
    ASSERT_TRUE(planned.ok()) << planned.status();
    ASSERT_TRUE(planned->has_plan());
    const v1::Plan& plan = planned->plan();
    v1::AcknowledgePlanRequest ack;
    ack.set_plan_id(plan.id());
    ack.set_deployment_id("dep-" + plan.id());
    ASSERT_TRUE(f_.planner.AcknowledgePlan(ack)->proceed());
    f_.live.Apply(*f_.store.GetPlan(plan.id()));
    v1::ReportPlanResultRequest rep;
    rep.set_plan_id(plan.id());
    rep.set_deployment_id(ack.deployment_id());
    rep.set_state(v1::PLAN_STATE_SUCCEEDED);
    ASSERT_TRUE(f_.planner.ReportPlanResult(rep).ok());
  }
  std::vector<v1::Event> Refusals() {
    std::vector<v1::Event> out;
    for (const v1::Event& e : f_.store.Events())
      if (e.action() == v1::AUDIT_ACTION_REVISION_REFUSED) out.push_back(e);
    return out;
  }
  static std::string Detail(const v1::Event& e, const std::string& key) {
    auto it = e.details().fields().find(key);
    return it == e.details().fields().end() ? "" : it->second.string_value();
  }

  PlannerOverFakes f_;
};

TEST_F(RevisionGateTest, PlanRevisionWithApproveRefusesACommitTheSignaturePolicyRejects) {
  v1::Revision r1 = Commit("1");
  Deploy("local", r1.sha());
  v1::Revision bad = Commit("2");
  f_.repo.Refuse(bad.sha(), "commit is not signed");
  const size_t plans = f_.Plans().size();

  auto refused = f_.planner.PlanRevision(Request("local", bad.sha(), v1::PLAN_TRIGGER_EXPLICIT_REVISION));
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  EXPECT_EQ(refused.status().message(), "revision " + bad.sha() +
                                            " of repository repo is not accepted by its signature policy: "
                                            "commit is not signed");
  EXPECT_EQ(f_.Plans().size(), plans) << "nothing planned";
  std::vector<v1::Event> events = Refusals();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].actor().id(), "bob");
  EXPECT_EQ(events[0].subject().repository_id(), "repo");
  EXPECT_EQ(events[0].subject().commit_sha(), bad.sha());
  EXPECT_EQ(events[0].subject().application_id(), "a");
  EXPECT_EQ(events[0].subject().environment_id(), "local");
  EXPECT_EQ(Detail(events[0], "call"), "PlanRevision");
  EXPECT_EQ(Detail(events[0], "refused_because"), "signature_policy");
  EXPECT_EQ(Detail(events[0], "signature_reason"), "commit is not signed");

  // Without approve too, and an accepted commit still plans.
  v1::PlanRevisionRequest pending = Request("prod", bad.sha(), v1::PLAN_TRIGGER_EXPLICIT_REVISION);
  pending.set_approve(false);
  EXPECT_EQ(f_.planner.PlanRevision(pending).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Refusals().size(), 2u);
  pending.mutable_revision()->set_sha(r1.sha());
  EXPECT_TRUE(f_.planner.PlanRevision(pending).ok());
}

TEST_F(RevisionGateTest, RollbackToADeployedRevisionThePolicyNowRefusesIsRefused) {
  v1::Revision r1 = Commit("1");
  Deploy("local", r1.sha());
  v1::Revision r2 = Commit("2");
  Deploy("local", r2.sha());
  f_.repo.Refuse(r1.sha(), "signed by a key that is no longer trusted");
  const size_t plans = f_.Plans().size();

  auto refused = f_.planner.PlanRevision(Request("local", r1.sha(), v1::PLAN_TRIGGER_ROLLBACK));
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  EXPECT_NE(refused.status().message().find("is not accepted by its signature policy"), std::string::npos);
  EXPECT_EQ(f_.Plans().size(), plans);
  ASSERT_EQ(Refusals().size(), 1u);
  EXPECT_EQ(Detail(Refusals()[0], "refused_because"), "signature_policy");
}

TEST_F(RevisionGateTest, RollbackToARevisionNeverDeployedInThatEnvironmentIsRefused) {
  v1::Revision r1 = Commit("1");
  Deploy("local", r1.sha());
  v1::Revision r2 = Commit("2");
  Deploy("local", r2.sha());
  v1::Revision never = Commit("3");
  // Planned in local but never deployed there: not a rollback target.
  v1::PlanRevisionRequest pending = Request("local", never.sha(), v1::PLAN_TRIGGER_EXPLICIT_REVISION);
  pending.set_approve(false);
  ASSERT_TRUE(f_.planner.PlanRevision(pending).ok());
  const size_t plans = f_.Plans().size();

  auto refused = f_.planner.PlanRevision(Request("local", never.sha(), v1::PLAN_TRIGGER_ROLLBACK));
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  EXPECT_EQ(refused.status().message(), "rollback of application \"a\" in environment \"local\" to revision " +
                                            never.sha() +
                                            " refused: that revision was never deployed successfully in that "
                                            "environment");
  // Deployed in local, never in prod.
  auto elsewhere = f_.planner.PlanRevision(Request("prod", r1.sha(), v1::PLAN_TRIGGER_ROLLBACK));
  ASSERT_EQ(elsewhere.status().code(), absl::StatusCode::kFailedPrecondition) << elsewhere.status();
  EXPECT_NE(elsewhere.status().message().find("\"prod\""), std::string::npos);
  EXPECT_EQ(f_.Plans().size(), plans) << "nothing planned";

  std::vector<v1::Event> events = Refusals();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].actor().id(), "bob");
  EXPECT_EQ(events[0].subject().commit_sha(), never.sha());
  EXPECT_EQ(events[0].subject().environment_id(), "local");
  EXPECT_EQ(Detail(events[0], "refused_because"), "never_deployed");
  EXPECT_EQ(events[1].subject().environment_id(), "prod");
}

TEST_F(RevisionGateTest, RollbackToARevisionDeployedBeforeIsPlannedAndApproved) {
  v1::Revision r1 = Commit("1");
  Deploy("local", r1.sha());
  v1::Revision r2 = Commit("2");
  Deploy("local", r2.sha());

  v1::PlanRevisionRequest req = Request("local", r1.sha(), v1::PLAN_TRIGGER_ROLLBACK);
  req.set_rollback_to_deployment_id("dep-1");
  auto rb = f_.planner.PlanRevision(req);
  ASSERT_TRUE(rb.ok()) << rb.status();
  ASSERT_TRUE(rb->has_plan());
  EXPECT_EQ(rb->plan().trigger(), v1::PLAN_TRIGGER_ROLLBACK);
  EXPECT_EQ(rb->plan().target_revision().sha(), r1.sha());
  EXPECT_EQ(rb->plan().state(), v1::PLAN_STATE_APPROVED);
  EXPECT_TRUE(Refusals().empty());
}

TEST_F(RevisionGateTest, PreviewPlanRefusesACommitTheSignaturePolicyRejectsAndPersistsNothing) {
  Commit("1");
  v1::Revision bad = Commit("2");
  f_.repo.Refuse(bad.sha(), "commit is not signed");
  v1::PreviewPlanRequest req;
  req.set_application_id("a");
  req.set_environment_id("local");
  req.mutable_revision()->set_sha(bad.sha());
  auto refused = f_.planner.PreviewPlan(req, User("carol"));
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  EXPECT_NE(refused.status().message().find("is not accepted by its signature policy: commit is not signed"),
            std::string::npos);
  EXPECT_TRUE(f_.Plans().empty());
  std::vector<v1::Event> events = Refusals();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].actor().id(), "carol");
  EXPECT_EQ(Detail(events[0], "call"), "PreviewPlan");
}

TEST_F(RevisionGateTest, ACommitTheRepoWatcherDoesNotHoldIsNotFoundAndNotPlanned) {
  Commit("1");
  auto missing = f_.planner.PlanRevision(Request("local", std::string(40, 'e'), v1::PLAN_TRIGGER_EXPLICIT_REVISION));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound) << missing.status();
  EXPECT_TRUE(f_.Plans().empty());
}

TEST_F(RevisionGateTest, RevisionsFromTheRepoWatchersStreamAreNotCheckedAgain) {
  v1::Application app = *f_.planner.GetApplication("a");
  app.mutable_sync_policy()->set_automated(true);
  google::protobuf::FieldMask mask;
  mask.add_paths("sync_policy");
  ASSERT_TRUE(f_.planner.UpdateApplication(app, mask, User("alice")).ok());
  ASSERT_EQ(*f_.planner.HandleRevision(Commit("1")), 2);
  EXPECT_EQ(f_.repo.checks(), 0);
}

}  // namespace
}  // namespace ferry::planner
