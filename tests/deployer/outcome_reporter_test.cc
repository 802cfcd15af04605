// OutcomeReporter against the in-memory store and planner.
#include "services/deployer/outcome_reporter.h"

#include <gtest/gtest.h>

#include "tests/deployer/fake_deployment_store.h"
#include "tests/deployer/fake_plan_source.h"

namespace ferry::deployer {
namespace {

class OutcomeReporterTest : public ::testing::Test {
 protected:
  // Records a deployment of plan `plan` in `state` at revision `sha`.
  void Record(const std::string& id, const std::string& plan, const std::string& app, v1::DeploymentState state,
              const std::string& sha, const std::string& rolled_back_by = "") {
    v1::Deployment d;
    d.set_id(id);
    d.set_plan_id(plan);
    d.set_application_id(app);
    d.set_environment_id("dev");
    d.set_state(v1::DEPLOYMENT_STATE_PENDING);
    d.mutable_revision()->set_sha(sha);
    d.mutable_previous_revision()->set_sha("prev-" + sha);
    d.set_rolled_back_by_deployment_id(rolled_back_by);
    ASSERT_TRUE(store_.Create(d, v1::Plan(), {}).ok());
    d.set_state(state);
    ASSERT_TRUE(store_.Update(d, {}, nullptr, nullptr).ok());
  }

  testing::FakeDeploymentStore store_;
  testing::InMemoryPlanSource plans_;
  OutcomeReporter reporter_{&store_, &store_, &plans_};
};

TEST_F(OutcomeReporterTest, EachTerminalOutcomeIsReportedOnceWithTheRevisionLeftLive) {
  Record("d-ok", "p-ok", "a", v1::DEPLOYMENT_STATE_SUCCEEDED, "new");
  Record("d-failed", "p-failed", "b", v1::DEPLOYMENT_STATE_FAILED, "bad");
  Record("d-restore", "", "c", v1::DEPLOYMENT_STATE_SUCCEEDED, "good");
  Record("d-rolled", "p-rolled", "c", v1::DEPLOYMENT_STATE_ROLLED_BACK, "broken", "d-restore");
  reporter_.ReportOutcomes();
  std::vector<v1::ReportPlanResultRequest> results = plans_.results();
  ASSERT_EQ(results.size(), 3u) << "a deployment without a plan was reported";
  EXPECT_EQ(results[0].plan_id(), "p-ok");
  EXPECT_EQ(results[0].state(), v1::PLAN_STATE_SUCCEEDED);
  EXPECT_EQ(results[0].live_revision().sha(), "new");
  EXPECT_EQ(results[1].plan_id(), "p-failed");
  EXPECT_EQ(results[1].state(), v1::PLAN_STATE_FAILED);
  EXPECT_EQ(results[1].live_revision().sha(), "prev-bad");
  EXPECT_EQ(results[2].plan_id(), "p-rolled");
  EXPECT_EQ(results[2].state(), v1::PLAN_STATE_ROLLED_BACK);
  EXPECT_EQ(results[2].live_revision().sha(), "good");
  reporter_.ReportOutcomes();
  EXPECT_EQ(plans_.results().size(), 3u) << "an outcome was reported twice";
}

// Issue #23: a pass marks what it reported in one write, not one per outcome.
TEST_F(OutcomeReporterTest, APassMarksItsOutcomesReportedInOneWrite) {
  for (int i = 0; i < 5; ++i) {
    Record("d" + std::to_string(i), "p" + std::to_string(i), "a" + std::to_string(i),
           v1::DEPLOYMENT_STATE_SUCCEEDED, "x");
  }
  reporter_.ReportOutcomes();
  EXPECT_EQ(plans_.results().size(), 5u);
  EXPECT_EQ(store_.mark_reported_writes(), 1);
  EXPECT_EQ(store_.reported().size(), 5u);
  reporter_.ReportOutcomes();
  EXPECT_EQ(plans_.results().size(), 5u) << "an outcome was reported twice";
  EXPECT_EQ(store_.mark_reported_writes(), 1) << "nothing to mark";
}

TEST_F(OutcomeReporterTest, AnUnreachablePlannerLeavesOutcomesForTheNextPass) {
  Record("d1", "p1", "a", v1::DEPLOYMENT_STATE_SUCCEEDED, "x");
  plans_.FailResults(absl::UnavailableError("planner down"));
  reporter_.ReportOutcomes();
  EXPECT_TRUE(store_.reported().empty());
  plans_.FailResults(absl::OkStatus());
  reporter_.ReportOutcomes();
  EXPECT_EQ(store_.reported(), (std::set<std::string>{"d1"}));
  EXPECT_EQ(plans_.results().size(), 1u);
}

TEST_F(OutcomeReporterTest, APlanThePlannerNoLongerKnowsIsNotReportedAgain) {
  Record("d1", "p1", "a", v1::DEPLOYMENT_STATE_SUCCEEDED, "x");
  plans_.AnswerResultOf("p1", absl::NotFoundError("no such plan"));
  reporter_.ReportOutcomes();
  EXPECT_EQ(store_.reported(), (std::set<std::string>{"d1"}));
}

// Issue #23: each outcome was its own call to the planner, which re-read
// every unreleased plan after each; a pass's outcomes now go in one call,
// each answered on its own: one the planner refuses for good is marked, one
// it could not take is left for the next pass, and neither holds back the
// others.
TEST_F(OutcomeReporterTest, APassReportsItsOutcomesInOneCallEachAnsweredOnItsOwn) {
  for (int i = 0; i < 5; ++i) {
    Record("d" + std::to_string(i), "p" + std::to_string(i), "a" + std::to_string(i),
           v1::DEPLOYMENT_STATE_SUCCEEDED, "x");
  }
  plans_.AnswerResultOf("p1", absl::FailedPreconditionError("plan p1 is not executed by deployment d1"));
  plans_.AnswerResultOf("p3", absl::UnavailableError("database unreachable"));
  reporter_.ReportOutcomes();
  EXPECT_EQ(plans_.batch_report_calls(), 1);
  EXPECT_EQ(plans_.single_report_calls(), 0);
  EXPECT_EQ(store_.reported(), (std::set<std::string>{"d0", "d1", "d2", "d4"}));
  EXPECT_EQ(store_.mark_reported_writes(), 1);
  plans_.AnswerResultOf("p3", absl::OkStatus());
  reporter_.ReportOutcomes();
  EXPECT_EQ(plans_.batch_report_calls(), 2);
  EXPECT_EQ(store_.reported(), (std::set<std::string>{"d0", "d1", "d2", "d3", "d4"}));
  std::vector<v1::ReportPlanResultRequest> results = plans_.results();
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(results.back().plan_id(), "p3");
}

}  // namespace
}  // namespace ferry::deployer
