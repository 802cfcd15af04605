// Required checks (#20): the verdict, and plans held, released and failed
// by them, over in-memory fakes: no PostgreSQL, no repo-watcher.
#include "services/planner/check_gate.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "services/planner/review_event_consumer.h"
#include "tests/planner/planner_fakes.h"
#include "tests/support/fake_clock.h"

namespace ferry::planner {
namespace {

using testing::AppSpec;
using testing::ConfigMap;
using testing::EnvSpec;
using testing::kRef;
using testing::PlannerOverFakes;
using testing::User;

constexpr char kTestUrl[] = "https://ci.example.com/runs/7";
constexpr char kLintUrl[] = "https://ci.example.com/runs/8";

v1::CommitCheck Check(const std::string& name, v1::CheckState state, const std::string& url = "") {
  v1::CommitCheck c;
  c.set_name(name);
  c.set_state(state);
  c.set_url(url);
  return c;
}

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(RequiredChecksVerdictTest, NoRequiredCheckIsNoGate) {
  ChecksVerdict v = EvaluateRequiredChecks({}, {Check("ci/test", v1::CHECK_STATE_FAILURE)}, "a1b2");
  EXPECT_EQ(v.outcome, ChecksVerdict::Outcome::kNotRequired);
}

TEST(RequiredChecksVerdictTest, PendingNamesEveryCheckNotPassedYetIncludingUnreported) {
  ChecksVerdict v = EvaluateRequiredChecks({"ci/test", "lint", "e2e"},
                                           {Check("ci/test", v1::CHECK_STATE_SUCCESS),
                                            Check("lint", v1::CHECK_STATE_PENDING, kLintUrl),
                                            Check("unrelated", v1::CHECK_STATE_FAILURE)},
                                           "0123456789abcdef0123");
  EXPECT_EQ(v.outcome, ChecksVerdict::Outcome::kPending);
  EXPECT_EQ(v.pending, (std::vector<std::string>{"lint", "e2e"}));
  EXPECT_TRUE(Contains(v.message, "0123456789ab")) << v.message;
  EXPECT_TRUE(Contains(v.message, std::string("lint (pending, ") + kLintUrl + ")")) << v.message;
  EXPECT_TRUE(Contains(v.message, "e2e (not reported)")) << v.message;
  EXPECT_FALSE(Contains(v.message, "ci/test")) << v.message;
  EXPECT_FALSE(Contains(v.message, "unrelated")) << "a check that is not required gates nothing";
  ASSERT_EQ(v.required.size(), 3u);
  EXPECT_EQ(v.required[2].name(), "e2e");
  EXPECT_EQ(v.required[2].state(), v1::CHECK_STATE_UNSPECIFIED);
}

TEST(RequiredChecksVerdictTest, AFailureWinsOverPendingChecksAndIsNamedWithItsUrl) {
  v1::CommitCheck failed = Check("ci/test", v1::CHECK_STATE_FAILURE, kTestUrl);
  failed.set_description("3 tests failed");
  ChecksVerdict v = EvaluateRequiredChecks({"lint", "ci/test"}, {failed}, "a1b2");
  EXPECT_EQ(v.outcome, ChecksVerdict::Outcome::kFailed);
  EXPECT_EQ(v.failed.name(), "ci/test");
  EXPECT_TRUE(Contains(v.message, std::string("ci/test (failure: 3 tests failed, ") + kTestUrl + ")")) << v.message;
}

TEST(RequiredChecksVerdictTest, PassedWhenEveryRequiredCheckSucceededNamesMatchExactly) {
  EXPECT_EQ(EvaluateRequiredChecks({"ci/test"}, {Check("CI/test", v1::CHECK_STATE_SUCCESS)}, "a").outcome,
            ChecksVerdict::Outcome::kPending)
      << "names match exactly, as the CI system reports them";
  EXPECT_EQ(EvaluateRequiredChecks({"ci/test", "lint"},
                                   {Check("lint", v1::CHECK_STATE_SUCCESS), Check("ci/test", v1::CHECK_STATE_SUCCESS)},
                                   "a")
                .outcome,
            ChecksVerdict::Outcome::kPassed);
}

// An environment `id` requiring `checks`, application "a" deployed there.
void AddGatedApp(PlannerOverFakes& f, v1::ApprovalPolicy approval, const std::vector<std::string>& checks) {
  v1::Environment env = EnvSpec("ci", approval);
  for (const std::string& c : checks) env.add_required_checks(c);
  ASSERT_TRUE(f.planner.CreateEnvironment(env, User("alice")).ok());
  ASSERT_TRUE(f.planner.CreateApplication(AppSpec("a", "apps/a", {"ci"}), User("alice")).ok());
}

v1::Revision Commit(PlannerOverFakes& f, const std::string& version) {
  return f.repo.Commit("repo", kRef, {{"apps/a/cm.yaml", {ConfigMap("a", version), ""}}});
}

std::vector<v1::Event> EventsOf(PlannerOverFakes& f, v1::AuditAction action) {
  std::vector<v1::Event> out;
  for (const v1::Event& e : f.store.Events())
    if (e.action() == action) out.push_back(e);
  return out;
}

std::string DetailString(const v1::Event& e, const std::string& key) {
  auto it = e.details().fields().find(key);
  return it == e.details().fields().end() ? "" : it->second.string_value();
}

TEST(CheckGateTest, APlanWaitsForEveryRequiredCheckAndIsReleasedWhenAllPassEachStepAudited) {
  PlannerOverFakes f;
  AddGatedApp(f, v1::APPROVAL_POLICY_AUTO, {"ci/test", "lint"});
  v1::Revision rev = Commit(f, "1");
  ASSERT_EQ(*f.planner.revision_planner()->HandleRevision(rev), 1);
  v1::Plan plan = f.Plans("a")[0];
  EXPECT_EQ(plan.state(), v1::PLAN_STATE_APPROVED);
  EXPECT_EQ(plan.hold_reason(), v1::HOLD_REASON_CHECKS_PENDING);
  EXPECT_TRUE(Contains(plan.hold_message(), "ci/test (not reported)")) << plan.hold_message();
  EXPECT_TRUE(Contains(plan.hold_message(), "lint (not reported)")) << plan.hold_message();
  EXPECT_TRUE(f.ReleasedIds().empty());
  ASSERT_EQ(EventsOf(f, v1::AUDIT_ACTION_PLAN_HELD_BY_CHECKS).size(), 1u);
  EXPECT_EQ(EventsOf(f, v1::AUDIT_ACTION_PLAN_HELD_BY_CHECKS)[0].subject().plan_id(), plan.id());

  f.checks.Report("repo", rev.sha(), "ci/test", v1::CHECK_STATE_PENDING, kTestUrl);
  f.checks.Report("repo", rev.sha(), "ci/test", v1::CHECK_STATE_SUCCESS, kTestUrl);
  EXPECT_EQ(*f.planner.ReevaluateHoldsOf("repo", rev.sha()), 0);
  plan = f.Plans("a")[0];
  EXPECT_EQ(plan.hold_reason(), v1::HOLD_REASON_CHECKS_PENDING);
  EXPECT_FALSE(Contains(plan.hold_message(), "ci/test")) << plan.hold_message();
  EXPECT_TRUE(Contains(plan.hold_message(), "lint")) << plan.hold_message();
  EXPECT_EQ(EventsOf(f, v1::AUDIT_ACTION_PLAN_HELD_BY_CHECKS).size(), 2u) << "the pending checks changed";
  EXPECT_EQ(*f.planner.ReevaluateHolds(), 0);
  EXPECT_EQ(EventsOf(f, v1::AUDIT_ACTION_PLAN_HELD_BY_CHECKS).size(), 2u) << "nothing changed, nothing audited";

  f.checks.Report("repo", rev.sha(), "lint", v1::CHECK_STATE_SUCCESS, kLintUrl);
  EXPECT_EQ(*f.planner.ReevaluateHoldsOf("repo", rev.sha()), 1);
  plan = f.Plans("a")[0];
  EXPECT_EQ(plan.hold_reason(), v1::HOLD_REASON_UNSPECIFIED);
  EXPECT_EQ(f.ReleasedIds(), std::vector<std::string>{plan.id()});
  std::vector<v1::Event> passed = EventsOf(f, v1::AUDIT_ACTION_PLAN_CHECKS_PASSED);
  ASSERT_EQ(passed.size(), 1u);
  EXPECT_TRUE(Contains(passed[0].message(), kTestUrl)) << passed[0].message();
  EXPECT_TRUE(Contains(passed[0].message(), kLintUrl)) << passed[0].message();
  EXPECT_TRUE(Contains(passed[0].message(), "released")) << passed[0].message();
  EXPECT_EQ(passed[0].details().fields().at("checks").list_value().values_size(), 2);
}

TEST(CheckGateTest, AFailedRequiredCheckFailsThePlanAndALaterSuccessDoesNotReviveItButANewPlanPasses) {
  PlannerOverFakes f;
  AddGatedApp(f, v1::APPROVAL_POLICY_AUTO, {"ci/test"});
  v1::Revision rev = Commit(f, "1");
  ASSERT_EQ(*f.planner.revision_planner()->HandleRevision(rev), 1);
  const std::string id = f.Plans("a")[0].id();
  f.checks.Report("repo", rev.sha(), "ci/test", v1::CHECK_STATE_FAILURE, kTestUrl);
  EXPECT_EQ(*f.planner.ReevaluateHoldsOf("repo", rev.sha()), 0);
  v1::Plan plan = *f.planner.GetPlan(id, v1::PLAN_VIEW_BASIC);
  EXPECT_EQ(plan.state(), v1::PLAN_STATE_FAILED);
  EXPECT_EQ(plan.hold_reason(), v1::HOLD_REASON_UNSPECIFIED);
  EXPECT_TRUE(Contains(plan.failure().message(), "required check ci/test (failure, " + std::string(kTestUrl)))
      << plan.failure().message();
  std::vector<v1::Event> failed = EventsOf(f, v1::AUDIT_ACTION_PLAN_FAILED_BY_CHECK);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(DetailString(failed[0], "check"), "ci/test");
  EXPECT_EQ(DetailString(failed[0], "state"), "CHECK_STATE_FAILURE");
  EXPECT_EQ(DetailString(failed[0], "url"), kTestUrl);
  EXPECT_EQ(failed[0].subject().commit_sha(), rev.sha());

  // The check is re-run and passes: the failed plan stays failed.
  f.checks.Report("repo", rev.sha(), "ci/test", v1::CHECK_STATE_SUCCESS, kTestUrl);
  EXPECT_EQ(*f.planner.ReevaluateHolds(), 0);
  EXPECT_EQ(f.planner.GetPlan(id, v1::PLAN_VIEW_BASIC)->state(), v1::PLAN_STATE_FAILED);
  EXPECT_TRUE(f.ReleasedIds().empty());
  // A refresh plans the commit again, and its checks now pass.
  v1::RefreshApplicationRequest refresh;
  refresh.set_application_id("a");
  absl::StatusOr<std::vector<v1::Plan>> again = f.planner.RefreshApplication(refresh);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_EQ(again->size(), 1u);
  EXPECT_NE((*again)[0].id(), id);
  EXPECT_EQ((*again)[0].state(), v1::PLAN_STATE_APPROVED);
  EXPECT_EQ((*again)[0].hold_reason(), v1::HOLD_REASON_UNSPECIFIED);
  EXPECT_EQ(f.ReleasedIds(), std::vector<std::string>{(*again)[0].id()});
  EXPECT_EQ(EventsOf(f, v1::AUDIT_ACTION_PLAN_CHECKS_PASSED).size(), 1u) << "the new plan's checks passed";
}

TEST(CheckGateTest, APlanForACommitWhoseCheckAlreadyFailedIsMadeFailed) {
  PlannerOverFakes f;
  AddGatedApp(f, v1::APPROVAL_POLICY_AUTO, {"ci/test"});
  v1::Revision rev = Commit(f, "1");
  f.checks.Report("repo", rev.sha(), "ci/test", v1::CHECK_STATE_FAILURE, kTestUrl);
  ASSERT_EQ(*f.planner.revision_planner()->HandleRevision(rev), 1);
  v1::Plan plan = f.Plans("a")[0];
  EXPECT_EQ(plan.state(), v1::PLAN_STATE_FAILED);
  EXPECT_TRUE(Contains(plan.failure().message(), kTestUrl)) << plan.failure().message();
  EXPECT_TRUE(f.ReleasedIds().empty());
  EXPECT_EQ(EventsOf(f, v1::AUDIT_ACTION_PLAN_FAILED_BY_CHECK).size(), 1u);
  EXPECT_EQ(EventsOf(f, v1::AUDIT_ACTION_PLAN_APPROVED).size(), 0u);
}

TEST(CheckGateTest, APendingPlanShowsItsChecksMayBeApprovedAndThenWaitsForThem) {
  PlannerOverFakes f;
  AddGatedApp(f, v1::APPROVAL_POLICY_MANUAL, {"ci/test"});
  v1::Revision rev = Commit(f, "1");
  ASSERT_EQ(*f.planner.revision_planner()->HandleRevision(rev), 1);
  v1::Plan plan = f.Plans("a")[0];
  EXPECT_EQ(plan.state(), v1::PLAN_STATE_PENDING);
  EXPECT_EQ(plan.hold_reason(), v1::HOLD_REASON_CHECKS_PENDING);
  EXPECT_TRUE(Contains(plan.hold_message(), "also waits for ApprovePlan")) << plan.hold_message();
  absl::StatusOr<v1::Plan> approved = f.planner.ApprovePlan(plan.id(), User("bob"), "");
  ASSERT_TRUE(approved.ok()) << approved.status();
  EXPECT_EQ(approved->state(), v1::PLAN_STATE_APPROVED);
  EXPECT_EQ(approved->hold_reason(), v1::HOLD_REASON_CHECKS_PENDING);
  EXPECT_TRUE(f.ReleasedIds().empty());
  f.checks.Report("repo", rev.sha(), "ci/test", v1::CHECK_STATE_SUCCESS, kTestUrl);
  EXPECT_EQ(*f.planner.ReevaluateHolds(), 1);
  EXPECT_EQ(f.ReleasedIds(), std::vector<std::string>{plan.id()});
}

TEST(CheckGateTest, APendingPlanWithoutChecksPassedAwaitsApprovalOnceTheyPass) {
  PlannerOverFakes f;
  AddGatedApp(f, v1::APPROVAL_POLICY_MANUAL, {"ci/test"});
  v1::Revision rev = Commit(f, "1");
  ASSERT_EQ(*f.planner.revision_planner()->HandleRevision(rev), 1);
  f.checks.Report("repo", rev.sha(), "ci/test", v1::CHECK_STATE_SUCCESS, kTestUrl);
  EXPECT_EQ(*f.planner.ReevaluateHolds(), 0);
  v1::Plan plan = f.Plans("a")[0];
  EXPECT_EQ(plan.state(), v1::PLAN_STATE_PENDING);
  EXPECT_EQ(plan.hold_reason(), v1::HOLD_REASON_AWAITING_APPROVAL);
  std::vector<v1::Event> passed = EventsOf(f, v1::AUDIT_ACTION_PLAN_CHECKS_PASSED);
  ASSERT_EQ(passed.size(), 1u);
  EXPECT_TRUE(Contains(passed[0].message(), "still held: waiting for ApprovePlan")) << passed[0].message();
}

TEST(CheckGateTest, ApprovingAPlanWhoseCheckFailedIsRefusedAndFailsIt) {
  PlannerOverFakes f;
  AddGatedApp(f, v1::APPROVAL_POLICY_MANUAL, {"ci/test"});
  v1::Revision rev = Commit(f, "1");
  ASSERT_EQ(*f.planner.revision_planner()->HandleRevision(rev), 1);
  const std::string id = f.Plans("a")[0].id();
  f.checks.Report("repo", rev.sha(), "ci/test", v1::CHECK_STATE_FAILURE, kTestUrl);
  absl::StatusOr<v1::Plan> approved = f.planner.ApprovePlan(id, User("bob"), "");
  ASSERT_FALSE(approved.ok());
  EXPECT_EQ(approved.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(std::string(approved.status().message()), kTestUrl)) << approved.status();
  EXPECT_EQ(f.planner.GetPlan(id, v1::PLAN_VIEW_BASIC)->state(), v1::PLAN_STATE_FAILED);
  EXPECT_EQ(EventsOf(f, v1::AUDIT_ACTION_PLAN_FAILED_BY_CHECK).size(), 1u);
}

TEST(CheckGateTest, UnreadableChecksKeepTheHoldAndFailPlanningTransiently) {
  PlannerOverFakes f;
  AddGatedApp(f, v1::APPROVAL_POLICY_AUTO, {"ci/test"});
  v1::Revision rev = Commit(f, "1");
  ASSERT_EQ(*f.planner.revision_planner()->HandleRevision(rev), 1);
  f.checks.Report("repo", rev.sha(), "ci/test", v1::CHECK_STATE_SUCCESS, kTestUrl);
  f.checks.FailWith(absl::UnavailableError("repo-watcher down"));
  absl::StatusOr<int> released = f.planner.ReevaluateHolds();
  EXPECT_EQ(released.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(f.Plans("a")[0].hold_reason(), v1::HOLD_REASON_CHECKS_PENDING) << "kept, not released blindly";
  absl::StatusOr<int> planned = f.planner.revision_planner()->HandleRevision(Commit(f, "2"));
  EXPECT_EQ(planned.status().code(), absl::StatusCode::kUnavailable) << "retried by the revision consumer";
  f.checks.FailWith(absl::OkStatus());
}

TEST(CheckGateTest, EnvironmentsWithoutRequiredChecksNeverAskTheSource) {
  PlannerOverFakes f;
  AddGatedApp(f, v1::APPROVAL_POLICY_AUTO, {});
  ASSERT_EQ(*f.planner.revision_planner()->HandleRevision(Commit(f, "1")), 1);
  EXPECT_EQ(f.Plans("a")[0].hold_reason(), v1::HOLD_REASON_UNSPECIFIED);
  EXPECT_EQ(f.checks.list_calls(), 0);
  EXPECT_EQ(EventsOf(f, v1::AUDIT_ACTION_PLAN_CHECKS_PASSED).size(), 0u);
}

TEST(CheckGateTest, RequiredChecksAreValidatedNamingTheField) {
  PlannerOverFakes f;
  v1::Environment env = EnvSpec("ci", v1::APPROVAL_POLICY_AUTO);
  env.add_required_checks("ci/test");
  env.add_required_checks("ci/test");
  absl::StatusOr<v1::Environment> refused = f.planner.CreateEnvironment(env, User("alice"));
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(std::string(refused.status().message()), "environment.required_checks[1]: \"ci/test\" is listed twice"))
      << refused.status();
  env.clear_required_checks();
  env.add_required_checks("");
  refused = f.planner.CreateEnvironment(env, User("alice"));
  EXPECT_TRUE(Contains(std::string(refused.status().message()), "environment.required_checks[0]")) << refused.status();
  env.set_required_checks(0, "ci/test");
  ASSERT_TRUE(f.planner.CreateEnvironment(env, User("alice")).ok());
  v1::Environment update;
  update.set_id("ci");
  update.add_required_checks("lint");
  google::protobuf::FieldMask mask;
  mask.add_paths("required_checks");
  absl::StatusOr<v1::Environment> updated = f.planner.UpdateEnvironment(update, mask, User("alice"));
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->required_checks_size(), 1);
  EXPECT_EQ(updated->required_checks(0), "lint");
}

TEST(ReviewEventConsumerTest, ACheckResultReleasesHeldPlansOfItsCommitAtOnceAndTheCursorIsKept) {
  PlannerOverFakes f;
  AddGatedApp(f, v1::APPROVAL_POLICY_AUTO, {"ci/test"});
  v1::Revision rev = Commit(f, "1");
  ASSERT_EQ(*f.planner.revision_planner()->HandleRevision(rev), 1);
  ferry::testing::FakeClock clock;
  ReviewEventConsumer consumer(&f.checks, &f.store, f.planner.hold_evaluator(), &clock);
  consumer.Start();
  f.checks.PullRequestEvent("repo", 42);
  f.checks.Report("repo", rev.sha(), "ci/test", v1::CHECK_STATE_SUCCESS, kTestUrl);
  f.checks.AwaitIdleStream();
  consumer.Stop();
  EXPECT_EQ(f.ReleasedIds(), std::vector<std::string>{f.Plans("a")[0].id()}) << "no periodic pass ran";
  EXPECT_EQ(*f.store.GetCursor(ReviewEventConsumer::kCursorName), "2");
  EXPECT_EQ(EventsOf(f, v1::AUDIT_ACTION_PLAN_CHECKS_PASSED).size(), 1u);

  // Resumed after the cursor: the old events are not handled again.
  ReviewEventConsumer again(&f.checks, &f.store, f.planner.hold_evaluator(), &clock);
  again.Start();
  f.checks.AwaitIdleStream();
  again.Stop();
  EXPECT_EQ(f.checks.watches(), 2);
  EXPECT_EQ(EventsOf(f, v1::AUDIT_ACTION_PLAN_CHECKS_PASSED).size(), 1u);
}

TEST(ReviewEventConsumerTest, AnUnreadableCheckSourceLeavesTheCursorForARetry) {
  PlannerOverFakes f;
  AddGatedApp(f, v1::APPROVAL_POLICY_AUTO, {"ci/test"});
  v1::Revision rev = Commit(f, "1");
  ASSERT_EQ(*f.planner.revision_planner()->HandleRevision(rev), 1);
  f.checks.Report("repo", rev.sha(), "ci/test", v1::CHECK_STATE_SUCCESS, kTestUrl);
  f.checks.FailWith(absl::UnavailableError("repo-watcher down"));
  ferry::testing::FakeClock clock;
  ReviewEventConsumer consumer(&f.checks, &f.store, f.planner.hold_evaluator(), &clock);
  consumer.Start();
  clock.AwaitSleeps(1);  // the event failed transiently: backing off
  EXPECT_EQ(*f.store.GetCursor(ReviewEventConsumer::kCursorName), "");
  EXPECT_TRUE(f.ReleasedIds().empty());
  f.checks.FailWith(absl::OkStatus());
  clock.AdvanceToNextDeadline();
  f.checks.AwaitIdleStream();
  consumer.Stop();
  EXPECT_EQ(*f.store.GetCursor(ReviewEventConsumer::kCursorName), "1");
  EXPECT_EQ(f.ReleasedIds().size(), 1u);
}

}  // namespace
}  // namespace ferry::planner
