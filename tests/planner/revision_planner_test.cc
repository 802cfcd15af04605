// Planning revisions and making plans against in-memory fakes: no
// PostgreSQL, no peers.
#include "services/planner/revision_planner.h"

#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/sha256.h"

#include "tests/planner/planner_fakes.h"

namespace ferry::planner {
namespace {

using testing::AppSpec;
using testing::ConfigMap;
using testing::EnvSpec;
using testing::FakeTree;
using testing::kRef;
using testing::PlannerOverFakes;
using testing::User;

class RevisionPlannerTest : public ::testing::Test {
 protected:
  void CreateEnv(const v1::Environment& env) { ASSERT_TRUE(f_.planner.CreateEnvironment(env, User("alice")).ok()); }
  void CreateApp(const v1::Application& app) { ASSERT_TRUE(f_.planner.CreateApplication(app, User("alice")).ok()); }
  // Deploys a plan the way the deployer does: acknowledge, apply, report.
  void Deploy(const v1::Plan& plan) {
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

  PlannerOverFakes f_;
  RevisionPlanner& revisions_ = *f_.planner.revision_planner();
};

TEST_F(RevisionPlannerTest, ARevisionIsPlannedOncePerCommitAndDefinitions) {
  CreateEnv(EnvSpec("local", v1::APPROVAL_POLICY_AUTO));
  CreateApp(AppSpec("a", "apps/a", {"local"}));
  v1::Revision rev = f_.repo.Commit("repo", kRef, {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}}});
  ASSERT_EQ(*revisions_.HandleRevision(rev), 1);
  v1::Plan p = f_.Plans("a")[0];
  EXPECT_EQ(p.state(), v1::PLAN_STATE_APPROVED);
  EXPECT_TRUE(p.decision().automatic());
  EXPECT_EQ(f_.ReleasedIds(), std::vector<std::string>{p.id()});
  EXPECT_EQ(*revisions_.HandleRevision(rev), 0) << "a replayed revision makes nothing";
  EXPECT_EQ(f_.Plans("a").size(), 1u);

  // Changed definitions at the same commit make a new plan that supersedes
  // the unclaimed one.
  v1::Application update;
  update.set_id("a");
  update.mutable_health_timeout()->set_seconds(60);
  google::protobuf::FieldMask mask;
  mask.add_paths("health_timeout");
  ASSERT_TRUE(f_.planner.UpdateApplication(update, mask, User("alice")).ok());
  ASSERT_EQ(*revisions_.HandleRevision(rev), 1);
  std::vector<v1::Plan> plans = f_.Plans("a");
  ASSERT_EQ(plans.size(), 2u);
  EXPECT_EQ(plans[0].health_timeout().seconds(), 60);
  EXPECT_EQ(plans[1].state(), v1::PLAN_STATE_SUPERSEDED);
  EXPECT_EQ(plans[1].superseded_by_plan_id(), plans[0].id());
  EXPECT_EQ(f_.store.CountEvents(v1::AUDIT_ACTION_PLAN_SUPERSEDED), 1);
}

TEST_F(RevisionPlannerTest, OnlyAutomatedApplicationsWhosePathsChangedArePlanned) {
  CreateEnv(EnvSpec("local", v1::APPROVAL_POLICY_AUTO));
  CreateApp(AppSpec("a", "apps/a", {"local"}));
  CreateApp(AppSpec("b", "apps/b", {"local"}));
  v1::Application manual = AppSpec("m", "apps/m", {"local"});
  manual.mutable_sync_policy()->set_automated(false);
  CreateApp(manual);
  FakeTree tree = {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}},
                   {"apps/b/cm.yaml", {ConfigMap("b", "1"), ""}},
                   {"apps/m/cm.yaml", {ConfigMap("m", "1"), ""}}};
  ASSERT_EQ(*revisions_.HandleRevision(f_.repo.Commit("repo", kRef, tree)), 2);
  tree["apps/b/cm.yaml"].data = ConfigMap("b", "2");
  ASSERT_EQ(*revisions_.HandleRevision(f_.repo.Commit("repo", kRef, tree)), 1);
  EXPECT_EQ(f_.Plans("a").size(), 1u);
  EXPECT_EQ(f_.Plans("b").size(), 2u);
  EXPECT_TRUE(f_.Plans("m").empty());
  v1::Revision other_ref = f_.repo.Commit("repo", "refs/heads/dev", tree);
  EXPECT_EQ(*revisions_.HandleRevision(other_ref), 0) << "applications follow their own ref";
}

TEST_F(RevisionPlannerTest, ManualApprovalAndAPinHoldThePlanForAPerson) {
  CreateEnv(EnvSpec("prod", v1::APPROVAL_POLICY_MANUAL));
  CreateEnv(EnvSpec("local", v1::APPROVAL_POLICY_AUTO));
  CreateApp(AppSpec("a", "apps/a", {"prod"}));
  CreateApp(AppSpec("pinned", "apps/p", {"local"}));
  v1::LiveState pinned;
  pinned.mutable_pin()->set_pinned(true);
  pinned.mutable_pin()->set_sha("0123456789abcdef");
  pinned.mutable_pin()->set_reason("rolled back");
  f_.live.Set("pinned", "local", pinned);
  FakeTree tree = {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}}, {"apps/p/cm.yaml", {ConfigMap("p", "1"), ""}}};
  ASSERT_EQ(*revisions_.HandleRevision(f_.repo.Commit("repo", kRef, tree)), 2);
  v1::Plan manual = f_.Plans("a")[0];
  EXPECT_EQ(manual.state(), v1::PLAN_STATE_PENDING);
  EXPECT_EQ(manual.hold_reason(), v1::HOLD_REASON_AWAITING_APPROVAL);
  v1::Plan held = f_.Plans("pinned")[0];
  EXPECT_EQ(held.state(), v1::PLAN_STATE_PENDING);
  EXPECT_EQ(held.hold_reason(), v1::HOLD_REASON_PINNED);
  EXPECT_NE(held.hold_message().find("pinned at 0123456789ab (rolled back)"), std::string::npos) << held.hold_message();
  EXPECT_TRUE(f_.ReleasedIds().empty());
  ASSERT_TRUE(f_.planner.ApprovePlan(held.id(), User("bob"), "go").ok());
  EXPECT_EQ(f_.ReleasedIds(), std::vector<std::string>{held.id()});
}

TEST_F(RevisionPlannerTest, ARevisionIsPromotedOnlyAfterItSucceededUpstream) {
  CreateEnv(EnvSpec("local", v1::APPROVAL_POLICY_AUTO));
  CreateEnv(EnvSpec("prod", v1::APPROVAL_POLICY_AUTO, "local"));
  CreateApp(AppSpec("a", "apps/a", {"local", "prod"}));
  v1::Revision rev = f_.repo.Commit("repo", kRef, {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}}});
  ASSERT_EQ(*revisions_.HandleRevision(rev), 1);
  EXPECT_TRUE(f_.Plans("a", "prod").empty());
  v1::PlanRevisionRequest explicit_req;
  explicit_req.set_application_id("a");
  explicit_req.set_environment_id("prod");
  explicit_req.mutable_revision()->set_sha(rev.sha());
  EXPECT_TRUE(absl::IsFailedPrecondition(revisions_.PlanRevision(explicit_req).status())) << "gate names local";
  Deploy(f_.Plans("a", "local")[0]);
  std::vector<v1::Plan> prod = f_.Plans("a", "prod");
  ASSERT_EQ(prod.size(), 1u) << "promoted when local succeeded";
  EXPECT_EQ(prod[0].target_revision().sha(), rev.sha());
  EXPECT_EQ(prod[0].state(), v1::PLAN_STATE_APPROVED);
}

// Issue #23: every deployment report of a success asks for promotions; one
// in an environment nothing promotes from reads no application (10,000 of
// them after a first deploy of 10,000 applications).
TEST_F(RevisionPlannerTest, ASuccessWhereNothingPromotesFromReadsNoApplication) {
  CreateEnv(EnvSpec("local", v1::APPROVAL_POLICY_AUTO));
  CreateEnv(EnvSpec("prod", v1::APPROVAL_POLICY_AUTO, "local"));
  CreateApp(AppSpec("a", "apps/a", {"local", "prod"}));
  v1::Revision rev = f_.repo.Commit("repo", kRef, {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}}});
  ASSERT_EQ(*revisions_.HandleRevision(rev), 1);
  Deploy(f_.Plans("a", "local")[0]);
  ASSERT_EQ(f_.Plans("a", "prod").size(), 1u) << "promoted when local succeeded";
  v1::Plan prod = f_.Plans("a", "prod")[0];
  prod.set_state(v1::PLAN_STATE_SUCCEEDED);
  const int before = f_.store.ApplicationReads();
  absl::StatusOr<int> promoted = revisions_.Promote(prod);
  ASSERT_TRUE(promoted.ok()) << promoted.status();
  EXPECT_EQ(*promoted, 0);
  EXPECT_EQ(f_.store.ApplicationReads(), before) << "nothing promotes from prod";
  v1::Plan local = f_.Plans("a", "local")[0];
  ASSERT_EQ(local.state(), v1::PLAN_STATE_SUCCEEDED);
  EXPECT_EQ(*revisions_.Promote(local), 0) << "prod's plan of this commit exists";
  EXPECT_EQ(f_.store.ApplicationReads(), before + 1) << "prod promotes from local: the application is read";
}

// Issue #23: a deployer reports results in batches; the environments are
// read once for the batch, and each success is promoted as alone.
TEST_F(RevisionPlannerTest, SuccessesReportedTogetherArePromotedWithOneReadOfTheEnvironments) {
  CreateEnv(EnvSpec("local", v1::APPROVAL_POLICY_AUTO));
  CreateEnv(EnvSpec("prod", v1::APPROVAL_POLICY_AUTO, "local"));
  CreateApp(AppSpec("a", "apps/a", {"local", "prod"}));
  CreateApp(AppSpec("b", "apps/b", {"local", "prod"}));
  v1::Revision rev = f_.repo.Commit("repo", kRef,
                                    {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}}, {"apps/b/cm.yaml", {ConfigMap("b", "1"), ""}}});
  ASSERT_EQ(*revisions_.HandleRevision(rev), 2);
  std::vector<v1::Plan> done;
  for (const char* app : {"a", "b"}) {
    ASSERT_EQ(f_.Plans(app, "local").size(), 1u);
    v1::Plan p = f_.Plans(app, "local")[0];
    p.set_state(v1::PLAN_STATE_SUCCEEDED);
    done.push_back(p);
  }
  v1::Plan manual = done[0];
  manual.set_trigger(v1::PLAN_TRIGGER_EXPLICIT_REVISION);  // not promoted
  done.push_back(manual);
  const int before = f_.store.EnvironmentListings();
  absl::StatusOr<int> promoted = revisions_.PromoteAll(done);
  ASSERT_TRUE(promoted.ok()) << promoted.status();
  EXPECT_EQ(*promoted, 2);
  EXPECT_EQ(f_.store.EnvironmentListings() - before, 1);
  EXPECT_EQ(f_.Plans("a", "prod").size(), 1u);
  EXPECT_EQ(f_.Plans("b", "prod").size(), 1u);
  // Nothing promotable: no read at all.
  EXPECT_EQ(*revisions_.PromoteAll({manual}), 0);
  EXPECT_EQ(f_.store.EnvironmentListings() - before, 1);
}

// Issue #23: a revision reads its applications' input paths with them, all
// at once; planning each does not read them again.
TEST_F(RevisionPlannerTest, ARevisionReadsNoApplicationsInputPathsOneByOne) {
  CreateEnv(EnvSpec("local", v1::APPROVAL_POLICY_AUTO));
  FakeTree tree;
  for (const char* app : {"a", "b", "c"}) {
    CreateApp(AppSpec(app, absl::StrCat("apps/", app), {"local"}));
    tree[absl::StrCat("apps/", app, "/cm.yaml")] = {ConfigMap(app, "1"), ""};
  }
  v1::Revision few = f_.repo.Commit("repo", kRef, tree);  // a few changed paths: the indexed read
  ASSERT_EQ(*revisions_.HandleRevision(few), 3);
  for (const char* app : {"a", "b", "c"}) tree[absl::StrCat("apps/", app, "/cm.yaml")] = {ConfigMap(app, "2"), ""};
  v1::Revision all = f_.repo.Commit("repo", kRef, tree);
  all.set_all_paths_changed(true);  // every application of the repository read
  ASSERT_EQ(*revisions_.HandleRevision(all), 3);
  EXPECT_EQ(f_.store.InputPathReads(), 0);
  // A plan asked for alone still reads them.
  v1::PlanRevisionRequest one;
  one.set_application_id("a");
  one.set_environment_id("local");
  one.mutable_revision()->set_sha(few.sha());
  ASSERT_TRUE(revisions_.PlanRevision(one).ok());
  EXPECT_EQ(f_.store.InputPathReads(), 1);
}

TEST_F(RevisionPlannerTest, DependantsArePlannedAfterAndHeldForTheirDependencies) {
  CreateEnv(EnvSpec("local", v1::APPROVAL_POLICY_AUTO));
  CreateApp(AppSpec("db", "apps/db", {"local"}));
  CreateApp(AppSpec("web", "apps/web", {"local"}, {"db"}));
  FakeTree tree = {{"apps/db/cm.yaml", {ConfigMap("db", "1"), ""}}, {"apps/web/cm.yaml", {ConfigMap("web", "1"), ""}}};
  ASSERT_EQ(*revisions_.HandleRevision(f_.repo.Commit("repo", kRef, tree)), 2);
  v1::Plan db = f_.Plans("db")[0];
  v1::Plan web = f_.Plans("web")[0];
  ASSERT_EQ(web.after_plan_ids_size(), 1);
  EXPECT_EQ(web.after_plan_ids(0), db.id());
  EXPECT_EQ(web.hold_reason(), v1::HOLD_REASON_DEPENDENCY);
  EXPECT_EQ(f_.ReleasedIds(), std::vector<std::string>{db.id()});
  Deploy(db);
  EXPECT_EQ(f_.ReleasedIds(), std::vector<std::string>{web.id()});
}

// Issue #23: a revision reads only the applications of its own repository
// and ref (and, for planning, those they depend on), never every
// application: with 10,000 repositories of one application each, one commit
// in each read all 10,000 applications 10,000 times. Dependencies across
// repositories still order the plans.
TEST_F(RevisionPlannerTest, ARevisionReadsOnlyItsRepositorysApplicationsAndTheirDependencies) {
  CreateEnv(EnvSpec("local", v1::APPROVAL_POLICY_AUTO));
  v1::Application db = AppSpec("db", "apps/db", {"local"});
  db.set_repository_id("data");
  CreateApp(db);
  CreateApp(AppSpec("web", "apps/web", {"local"}, {"db"}));
  for (int i = 0; i < 20; ++i) {  // applications of other repositories
    v1::Application other = AppSpec(absl::StrCat("other", i), "apps/x", {"local"});
    other.set_repository_id(absl::StrCat("repo", i));
    CreateApp(other);
  }
  const int listings = f_.store.FullListings();
  v1::Revision data = f_.repo.Commit("data", kRef, {{"apps/db/cm.yaml", {ConfigMap("db", "1"), ""}}});
  ASSERT_EQ(*revisions_.HandleRevision(data), 1);
  v1::Revision web = f_.repo.Commit("repo", kRef, {{"apps/web/cm.yaml", {ConfigMap("web", "1"), ""}},
                                                    {"apps/x/cm.yaml", {ConfigMap("x", "1"), ""}}});
  ASSERT_EQ(*revisions_.HandleRevision(web), 1) << "only web: the others deploy from their own repositories";
  EXPECT_EQ(f_.store.FullListings(), listings) << "no revision read every application";
  ASSERT_EQ(f_.Plans("db").size(), 1u);
  ASSERT_EQ(f_.Plans("web").size(), 1u);
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(f_.Plans(absl::StrCat("other", i)).empty());
  // web waits for db's plan, planned from the other repository.
  v1::Plan web_plan = f_.Plans("web")[0];
  ASSERT_EQ(web_plan.after_plan_ids_size(), 1);
  EXPECT_EQ(web_plan.after_plan_ids(0), f_.Plans("db")[0].id());
}

// Issue #23: a commit touching one application of a monorepo reads only the
// applications its changed paths touch (CatalogStore::ListApplicationsTouchedBy),
// not every application of the repository; a commit with every path changed
// (the first one) still reads them all.
TEST_F(RevisionPlannerTest, ACommitTouchingOneApplicationReadsOnlyTheApplicationsItTouches) {
  CreateEnv(EnvSpec("local", v1::APPROVAL_POLICY_AUTO));
  FakeTree tree;
  for (int i = 0; i < 200; ++i) {
    CreateApp(AppSpec(absl::StrCat("app", i), absl::StrCat("apps/a", i), {"local"}));
    tree[absl::StrCat("apps/a", i, "/cm.yaml")] = {ConfigMap(absl::StrCat("app", i), "1"), ""};
  }
  int listings = f_.store.RepoListings();
  ASSERT_EQ(*revisions_.HandleRevision(f_.repo.Commit("repo", kRef, tree)), 200) << "the first commit: all";
  EXPECT_EQ(f_.store.RepoListings(), listings + 1) << "every path changed: every application read";
  listings = f_.store.RepoListings();
  const int lookups = f_.store.TouchedByCalls();
  tree["apps/a17/cm.yaml"].data = ConfigMap("app17", "2");
  tree["docs/readme.md"] = {"not an application's", ""};
  ASSERT_EQ(*revisions_.HandleRevision(f_.repo.Commit("repo", kRef, tree)), 1);
  EXPECT_EQ(f_.store.RepoListings(), listings) << "no revision of a few paths read every application";
  EXPECT_EQ(f_.store.TouchedByCalls(), lookups + 1);
  EXPECT_EQ(f_.Plans("app17").size(), 2u);
  EXPECT_EQ(f_.Plans("app1").size(), 1u);
  EXPECT_EQ(f_.Plans("app170").size(), 1u);
}

TEST_F(RevisionPlannerTest, ABadManifestMakesAFailedPlanThatIsNeverReleased) {
  CreateEnv(EnvSpec("local", v1::APPROVAL_POLICY_AUTO));
  CreateApp(AppSpec("a", "apps/a", {"local"}));
  v1::Revision rev = f_.repo.Commit("repo", kRef, {{"apps/a/cm.yaml", {"kind: [unclosed\n", ""}}});
  ASSERT_EQ(*revisions_.HandleRevision(rev), 1);
  v1::Plan failed = f_.Plans("a")[0];
  EXPECT_EQ(failed.state(), v1::PLAN_STATE_FAILED);
  EXPECT_NE(failed.failure().message().find("cm.yaml"), std::string::npos) << failed.failure().message();
  EXPECT_TRUE(f_.ReleasedIds().empty());
  EXPECT_EQ(f_.store.CountEvents(v1::AUDIT_ACTION_RENDER_FAILED), 1);
  EXPECT_EQ(*revisions_.HandleRevision(rev), 0) << "the failure is not planned again";
}

TEST_F(RevisionPlannerTest, ABinaryContentFromFileIsPlannedAndDiffedByDigestNotBytes) {
  // Binary content used to fail the plan ("is not UTF-8 text"): it is carried
  // as contentBase64 and shown as a digest.
  CreateEnv(EnvSpec("local", v1::APPROVAL_POLICY_AUTO));
  CreateApp(AppSpec("a", "apps/a", {"local"}));
  const std::string bytes("\xff\xfe\x00binary", 9);
  v1::Revision rev = f_.repo.Commit(
      "repo", kRef,
      {{"apps/a/conf.yaml",
        {"apiVersion: ferry.dev/v1\nkind: ConfigFile\nmetadata:\n  name: conf\nspec:\n  path: a.bin\n"
         "  contentFrom: {file: a.bin}\n",
         ""}},
       {"apps/a/a.bin", {bytes, ""}}});
  absl::StatusOr<int> planned = revisions_.HandleRevision(rev);
  ASSERT_TRUE(planned.ok()) << planned.status();
  ASSERT_EQ(*planned, 1);
  v1::Plan plan = f_.Plans("a")[0];
  EXPECT_NE(plan.state(), v1::PLAN_STATE_FAILED) << plan.failure().message();
  ASSERT_EQ(plan.actions_size(), 1);
  EXPECT_NE(plan.actions(0).unified_diff().find("sha256:" + Sha256Hex(bytes)), std::string::npos)
      << plan.actions(0).unified_diff();
  EXPECT_EQ(plan.actions(0).unified_diff().find("binary"), plan.actions(0).unified_diff().find("binary content"));
  EXPECT_EQ(plan.actions(0).json_patch().find(absl::Base64Escape(bytes)), std::string::npos);
}

TEST_F(RevisionPlannerTest, InlineContentThatIsNotUtf8FailsThePlanNamingTheFile) {
  CreateEnv(EnvSpec("local", v1::APPROVAL_POLICY_AUTO));
  CreateApp(AppSpec("a", "apps/a", {"local"}));
  v1::Revision rev = f_.repo.Commit(
      "repo", kRef,
      {{"apps/a/conf.yaml",
        {"apiVersion: ferry.dev/v1\nkind: ConfigFile\nmetadata:\n  name: conf\nspec:\n  path: a.txt\n"
         "  content: \"\xff\xfe\"\n",
         ""}}});
  absl::StatusOr<int> planned = revisions_.HandleRevision(rev);
  ASSERT_TRUE(planned.ok()) << planned.status();
  ASSERT_EQ(*planned, 1);
  v1::Plan failed = f_.Plans("a")[0];
  EXPECT_EQ(failed.state(), v1::PLAN_STATE_FAILED);
  EXPECT_NE(failed.failure().message().find("apps/a/conf.yaml"), std::string::npos) << failed.failure().message();
  EXPECT_TRUE(f_.ReleasedIds().empty());
}

TEST_F(RevisionPlannerTest, APreviewPersistsNothing) {
  CreateEnv(EnvSpec("local", v1::APPROVAL_POLICY_AUTO));
  CreateApp(AppSpec("a", "apps/a", {"local"}));
  f_.repo.Commit("repo", kRef, {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}}});
  const size_t events = f_.store.Events().size();
  v1::PreviewPlanRequest req;
  req.set_application_id("a");
  req.set_environment_id("local");
  auto preview = revisions_.PreviewPlan(req, User("alice"));
  ASSERT_TRUE(preview.ok()) << preview.status();
  EXPECT_TRUE(preview->preview());
  EXPECT_EQ(preview->actions_size(), 1);
  EXPECT_TRUE(f_.Plans().empty());
  EXPECT_EQ(f_.store.Events().size(), events);
}

TEST_F(RevisionPlannerTest, APlanKnowsItsCommitsAuthorFromTheRevisionStream) {
  CreateEnv(EnvSpec("prod", v1::APPROVAL_POLICY_MANUAL));
  CreateApp(AppSpec("a", "apps/a", {"prod"}));
  v1::Revision rev = f_.repo.Commit("repo", kRef, {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}}});
  rev.mutable_author()->set_name("Alice Doe");
  rev.mutable_author()->set_email("alice@example.com");
  ASSERT_EQ(*revisions_.HandleRevision(rev), 1);
  EXPECT_EQ(f_.Plans("a")[0].target_author().email(), "alice@example.com");
  EXPECT_EQ(f_.Plans("a")[0].target_author().name(), "Alice Doe");
  // A later plan of the same commit (an explicit revision) knows it too.
  v1::PlanRevisionRequest req;
  req.set_application_id("a");
  req.set_environment_id("prod");
  req.mutable_revision()->set_sha(rev.sha());
  req.set_trigger(v1::PLAN_TRIGGER_EXPLICIT_REVISION);
  *req.mutable_actor() = User("bob");
  auto planned = revisions_.PlanRevision(req);
  ASSERT_TRUE(planned.ok()) << planned.status();
  EXPECT_EQ(planned->plan().target_author().email(), "alice@example.com");
}

// Issue #23: every plan of a commit carries the commit's author; a commit
// touching 10,000 applications read it 10,000 times. The author just recorded
// from the stream is known to its plans without a read: when they were
// planned at once, a read that all missed together was made by several
// (CI saw 2 where 1 was asked).
TEST_F(RevisionPlannerTest, ACommitTouchingManyApplicationsKnowsItsAuthorWithoutReadingIt) {
  CreateEnv(EnvSpec("local", v1::APPROVAL_POLICY_AUTO));
  FakeTree tree;
  for (int i = 0; i < 20; ++i) {
    const std::string id = absl::StrCat("a", i);
    CreateApp(AppSpec(id, "apps/" + id, {"local"}));
    tree[absl::StrCat("apps/", id, "/cm.yaml")] = {ConfigMap(id, "1"), ""};
  }
  v1::Revision rev = f_.repo.Commit("repo", kRef, tree);
  rev.mutable_author()->set_name("Alice Doe");
  rev.mutable_author()->set_email("alice@example.com");
  const int before = f_.store.AuthorReads();
  ASSERT_EQ(*revisions_.HandleRevision(rev), 20);
  EXPECT_EQ(f_.store.AuthorReads() - before, 0);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(f_.Plans(absl::StrCat("a", i))[0].target_author().email(), "alice@example.com");
  }
}

// An author recorded by another replica is read by the first plan of the
// commit and remembered for the next ones.
TEST_F(RevisionPlannerTest, AnAuthorRecordedElsewhereIsReadOnceForManyPlans) {
  CreateEnv(EnvSpec("local", v1::APPROVAL_POLICY_MANUAL));
  FakeTree tree;
  for (int i = 0; i < 5; ++i) {
    const std::string id = absl::StrCat("a", i);
    CreateApp(AppSpec(id, "apps/" + id, {"local"}));
    tree[absl::StrCat("apps/", id, "/cm.yaml")] = {ConfigMap(id, "1"), ""};
  }
  v1::Revision rev = f_.repo.Commit("repo", kRef, tree);
  v1::CommitAuthor author;
  author.set_name("Alice Doe");
  author.set_email("alice@example.com");
  ASSERT_TRUE(f_.store.RecordCommitAuthor("repo", rev.sha(), author).ok());
  const int before = f_.store.AuthorReads();
  for (int i = 0; i < 5; ++i) {
    v1::PlanRevisionRequest req;
    req.set_application_id(absl::StrCat("a", i));
    req.set_environment_id("local");
    req.mutable_revision()->set_sha(rev.sha());
    req.set_trigger(v1::PLAN_TRIGGER_EXPLICIT_REVISION);
    *req.mutable_actor() = User("bob");
    auto planned = revisions_.PlanRevision(req);
    ASSERT_TRUE(planned.ok()) << planned.status();
    EXPECT_EQ(planned->plan().target_author().email(), "alice@example.com");
  }
  EXPECT_EQ(f_.store.AuthorReads() - before, 1);
}

// Issue #23: whether each application already has its plan of the commit
// (a replay after a restart) was one read per application; it is one read
// for all of them.
TEST_F(RevisionPlannerTest, ACommitTouchingManyApplicationsLooksTheirPlansUpInOneRead) {
  CreateEnv(EnvSpec("local", v1::APPROVAL_POLICY_AUTO));
  FakeTree tree;
  for (int i = 0; i < 20; ++i) {
    const std::string id = absl::StrCat("a", i);
    CreateApp(AppSpec(id, "apps/" + id, {"local"}));
    tree[absl::StrCat("apps/", id, "/cm.yaml")] = {ConfigMap(id, "1"), ""};
  }
  v1::Revision rev = f_.repo.Commit("repo", kRef, tree);
  int before = f_.store.HavePlansReads();
  ASSERT_EQ(*revisions_.HandleRevision(rev), 20);
  EXPECT_EQ(f_.store.HavePlansReads() - before, 1);
  before = f_.store.HavePlansReads();
  EXPECT_EQ(*revisions_.HandleRevision(rev), 0) << "replayed: every plan exists";
  EXPECT_EQ(f_.store.HavePlansReads() - before, 1);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(f_.Plans(absl::StrCat("a", i)).size(), 1u);
}

// A commit whose author is not recorded (yet) is asked again: the author
// recorded later is found.
TEST_F(RevisionPlannerTest, AnUnknownAuthorIsNotRemembered) {
  CreateEnv(EnvSpec("prod", v1::APPROVAL_POLICY_MANUAL));
  CreateApp(AppSpec("a", "apps/a", {"prod"}));
  v1::Revision rev = f_.repo.Commit("repo", kRef, {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}}});
  ASSERT_EQ(*revisions_.HandleRevision(rev), 1);
  EXPECT_EQ(f_.Plans("a")[0].target_author().email(), "");
  v1::CommitAuthor author;
  author.set_email("alice@example.com");
  ASSERT_TRUE(f_.store.RecordCommitAuthor("repo", rev.sha(), author).ok());
  v1::PlanRevisionRequest req;
  req.set_application_id("a");
  req.set_environment_id("prod");
  req.mutable_revision()->set_sha(rev.sha());
  req.set_trigger(v1::PLAN_TRIGGER_EXPLICIT_REVISION);
  *req.mutable_actor() = User("bob");
  auto planned = revisions_.PlanRevision(req);
  ASSERT_TRUE(planned.ok()) << planned.status();
  EXPECT_EQ(planned->plan().target_author().email(), "alice@example.com");
}

TEST_F(RevisionPlannerTest, ARequestersOwnApprovalObeysTheEnvironmentsSeparationOfDuties) {
  CreateEnv(EnvSpec("prod", v1::APPROVAL_POLICY_MANUAL));
  CreateApp(AppSpec("a", "apps/a", {"prod"}));
  v1::Revision rev = f_.repo.Commit("repo", kRef, {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}}});
  rev.mutable_author()->set_email("alice@example.com");
  ASSERT_EQ(*revisions_.HandleRevision(rev), 1);
  v1::PlanRevisionRequest req;
  req.set_application_id("a");
  req.set_environment_id("prod");
  req.mutable_revision()->set_sha(rev.sha());
  req.set_trigger(v1::PLAN_TRIGGER_EXPLICIT_REVISION);
  req.set_approve(true);
  req.set_comment("deploying my review");
  *req.mutable_actor() = User("bob");

  // Two approvals needed: the requester's is the first.
  f_.approvals.Set("prod", testing::Rule(2));
  auto partial = revisions_.PlanRevision(req);
  ASSERT_TRUE(partial.ok()) << partial.status();
  const v1::Plan& p = partial->plan();
  EXPECT_EQ(p.state(), v1::PLAN_STATE_PENDING);
  EXPECT_EQ(p.hold_reason(), v1::HOLD_REASON_AWAITING_APPROVAL);
  ASSERT_EQ(p.approvals_size(), 1);
  EXPECT_EQ(p.approvals(0).actor().id(), "bob");
  EXPECT_EQ(f_.store.CountEvents(v1::AUDIT_ACTION_PLAN_APPROVAL_RECORDED), 1);
  EXPECT_NE(f_.store.LastEvent(v1::AUDIT_ACTION_PLAN_APPROVAL_RECORDED).message().find("1 of 2 approvals"),
            std::string::npos);
  EXPECT_TRUE(f_.ReleasedIds().empty());
  EXPECT_TRUE(absl::IsAlreadyExists(f_.planner.ApprovePlan(p.id(), User("bob"), "").status()));
  auto second = f_.planner.ApprovePlan(p.id(), User("carol"), "");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->state(), v1::PLAN_STATE_APPROVED);
  EXPECT_EQ(f_.ReleasedIds(), std::vector<std::string>{p.id()});

  // The requester may not approve at all: refused before anything is made.
  f_.approvals.Set("prod", testing::Rule(1, /*distinct_from_author=*/false, /*distinct_from_requester=*/true));
  const size_t plans = f_.Plans("a").size();
  auto own = revisions_.PlanRevision(req);
  EXPECT_TRUE(absl::IsPermissionDenied(own.status())) << own.status();
  EXPECT_NE(own.status().message().find("distinct_from_requester"), std::string::npos) << own.status();
  EXPECT_EQ(f_.Plans("a").size(), plans);
  EXPECT_EQ(f_.store.CountEvents(v1::AUDIT_ACTION_ACCESS_DENIED), 1);

  // The commit's author may not approve; anyone else approves alone.
  f_.approvals.Set("prod", testing::Rule(1, /*distinct_from_author=*/true));
  *req.mutable_actor() = User("alice@example.com");
  auto author = revisions_.PlanRevision(req);
  EXPECT_TRUE(absl::IsPermissionDenied(author.status())) << author.status();
  EXPECT_NE(author.status().message().find("distinct_from_author"), std::string::npos) << author.status();
  *req.mutable_actor() = User("bob");
  auto approved = revisions_.PlanRevision(req);
  ASSERT_TRUE(approved.ok()) << approved.status();
  EXPECT_EQ(approved->plan().state(), v1::PLAN_STATE_APPROVED);
  EXPECT_EQ(approved->plan().decision().actor().id(), "bob");
  ASSERT_EQ(approved->plan().approvals_size(), 1);
}

}  // namespace
}  // namespace ferry::planner
