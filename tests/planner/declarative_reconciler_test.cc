// Reconciling ferry.yaml against the in-memory store: no PostgreSQL.
#include "services/planner/declarative_reconciler.h"

#include <gtest/gtest.h>

#include "tests/planner/planner_fakes.h"

namespace ferry::planner {
namespace {

using testing::AppSpec;
using testing::EnvSpec;
using testing::FakeClock;
using testing::FakePlannerStore;
using testing::FakeRepoSource;
using testing::FakeTree;
using testing::kRef;
using testing::User;

constexpr char kFerryYaml[] = R"(environments:
  local:
    host: {rootDir: /tmp/ferry-local}
    approval: auto
  prod:
    host: {rootDir: /tmp/ferry-prod}
    approval: manual
    promoteFrom: local
applications:
  web:
    path: apps/web
    environments: [local, prod]
)";

class DeclarativeReconcilerTest : public ::testing::Test {
 protected:
  absl::StatusOr<v1::ApplyDeclarativeConfigResponse> Apply(const std::string& commit = "", bool dry_run = false) {
    v1::ApplyDeclarativeConfigRequest req;
    req.mutable_source()->set_repository_id("config");
    req.mutable_source()->set_ref("main");
    req.set_commit(commit);
    req.set_dry_run(dry_run);
    return reconciler_.ApplyDeclarativeConfig(req, User("alice"));
  }
  std::vector<std::pair<std::string, v1::ObjectAction>> Changes(const v1::ApplyDeclarativeConfigResponse& r) {
    std::vector<std::pair<std::string, v1::ObjectAction>> out;
    for (const auto& c : r.changes()) out.emplace_back(c.kind() + "/" + c.id(), c.action());
    return out;
  }

  FakePlannerStore store_;
  FakeRepoSource repo_;
  FakeClock clock_{absl::FromUnixSeconds(1'800'000'000)};
  std::vector<std::set<std::string>> replanned_;
  RevisionGate gate_{&store_, &store_, &repo_, &clock_};
  DeclarativeReconciler reconciler_{&store_, &repo_, &gate_, &clock_, [this](const std::set<std::string>& ids) {
                                      replanned_.push_back(ids);
                                      return absl::OkStatus();
                                    }};
};

// Issue #23: a ferry.yaml reconciled again at the commit its applications
// are stamped with (ApplyDeclarativeConfig, then the revision consumer seeing
// the same commit) writes no application: 10,000 declared applications were
// rewritten, 30,000 statements in one transaction, for nothing. A new commit
// still stamps every application it declares.
TEST_F(DeclarativeReconcilerTest, TheSameCommitReconciledAgainWritesNoApplication) {
  FakeTree tree = {{"ferry.yaml", {kFerryYaml, ""}}};
  v1::Revision r1 = repo_.Commit("config", kRef, tree);
  ASSERT_TRUE(Apply().ok());
  ASSERT_EQ(store_.applications_written(), 1);
  auto again = Apply(r1.sha());
  ASSERT_TRUE(again.ok()) << again.status();
  using P = std::pair<std::string, v1::ObjectAction>;
  EXPECT_EQ(Changes(*again), (std::vector<P>{{"Environment/local", v1::OBJECT_ACTION_NOOP},
                                             {"Environment/prod", v1::OBJECT_ACTION_NOOP},
                                             {"Application/web", v1::OBJECT_ACTION_NOOP}}));
  EXPECT_EQ(store_.applications_written(), 1) << "already stamped with this commit";
  EXPECT_EQ(store_.GetApplication("web")->declared_by().commit(), r1.sha());
  tree["README.md"] = {"unrelated\n", ""};
  v1::Revision r2 = repo_.Commit("config", kRef, tree);
  ASSERT_TRUE(Apply(r2.sha()).ok());
  EXPECT_EQ(store_.applications_written(), 2) << "a new commit is stamped";
  EXPECT_EQ(store_.GetApplication("web")->declared_by().commit(), r2.sha());
  EXPECT_EQ(replanned_.size(), 1u) << "nothing replanned by either";
}

TEST_F(DeclarativeReconcilerTest, CreatesUpdatesAndDeletesWhatTheFileDeclares) {
  FakeTree tree = {{"ferry.yaml", {kFerryYaml, ""}}};
  v1::Revision r1 = repo_.Commit("config", kRef, tree);
  auto first = Apply();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->commit(), r1.sha());
  using P = std::pair<std::string, v1::ObjectAction>;
  EXPECT_EQ(Changes(*first), (std::vector<P>{{"Environment/local", v1::OBJECT_ACTION_CREATE},
                                             {"Environment/prod", v1::OBJECT_ACTION_CREATE},
                                             {"Application/web", v1::OBJECT_ACTION_CREATE}}));
  v1::Application web = *store_.GetApplication("web");
  EXPECT_EQ(web.declared_by().path(), "ferry.yaml");
  EXPECT_EQ(web.declared_by().ref(), kRef);
  EXPECT_EQ(web.declared_by().commit(), r1.sha());
  EXPECT_EQ(replanned_, (std::vector<std::set<std::string>>{{"web"}}));
  auto sources = *store_.ListDeclarationSources();
  ASSERT_EQ(sources.size(), 1u);
  EXPECT_EQ(sources[0].source.commit(), r1.sha());

  // Same file again: nothing changes but the commit stamp; nothing re-planned.
  v1::Revision r2 = repo_.Commit("config", kRef, {{"ferry.yaml", {kFerryYaml, ""}}, {"README", {"x", ""}}});
  auto same = Apply();
  EXPECT_EQ(Changes(*same), (std::vector<P>{{"Environment/local", v1::OBJECT_ACTION_NOOP},
                                            {"Environment/prod", v1::OBJECT_ACTION_NOOP},
                                            {"Application/web", v1::OBJECT_ACTION_NOOP}}));
  EXPECT_EQ(store_.GetApplication("web")->declared_by().commit(), r2.sha());
  EXPECT_EQ(replanned_.size(), 1u);

  // prod goes, web changes, api joins.
  tree["ferry.yaml"].data = R"(environments:
  local:
    host: {rootDir: /tmp/ferry-local}
    approval: auto
applications:
  web:
    path: apps/web2
    environments: [local]
  api:
    path: apps/api
    environments: [local]
)";
  repo_.Commit("config", kRef, tree);
  auto next = Apply();
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(Changes(*next), (std::vector<P>{{"Environment/local", v1::OBJECT_ACTION_NOOP},
                                            {"Application/web", v1::OBJECT_ACTION_UPDATE},
                                            {"Application/api", v1::OBJECT_ACTION_CREATE},
                                            {"Environment/prod", v1::OBJECT_ACTION_DELETE}}));
  EXPECT_TRUE(absl::IsNotFound(store_.GetEnvironment("prod").status()));
  EXPECT_EQ(store_.GetApplication("web")->path(), "apps/web2");
  EXPECT_EQ(store_.GetApplication("web")->create_time().seconds(), 1'800'000'000) << "create_time kept";
  EXPECT_EQ(replanned_.back(), (std::set<std::string>{"api", "web"}));

  // An application removed from the file is deleted, its open plans closed.
  v1::Plan open;
  open.set_application_id("api");
  open.set_environment_id("local");
  open.set_state(v1::PLAN_STATE_PENDING);
  open = *store_.InsertPlan(open, "k", false, false, nullptr, nullptr);
  tree["ferry.yaml"].data = "environments:\n  local:\n    host: {rootDir: /tmp/ferry-local}\n";
  repo_.Commit("config", kRef, tree);
  auto last = Apply();
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_TRUE(absl::IsNotFound(store_.GetApplication("api").status()));
  EXPECT_EQ(store_.GetPlan(open.id())->state(), v1::PLAN_STATE_REJECTED);
  EXPECT_EQ(store_.CountEvents(v1::AUDIT_ACTION_APPLICATION_DELETED), 2);
  EXPECT_EQ(store_.CountEvents(v1::AUDIT_ACTION_ENVIRONMENT_CREATED), 2);
  EXPECT_EQ(store_.CountEvents(v1::AUDIT_ACTION_APPLICATION_UPDATED), 1);
}

TEST_F(DeclarativeReconcilerTest, DryRunReportsTheChangesAndWritesNothing) {
  repo_.Commit("config", kRef, {{"ferry.yaml", {kFerryYaml, ""}}});
  auto dry = Apply("", /*dry_run=*/true);
  ASSERT_TRUE(dry.ok()) << dry.status();
  EXPECT_EQ(dry->changes_size(), 3);
  EXPECT_EQ(store_.config_changes(), 0);
  EXPECT_TRUE(store_.ListApplications()->empty());
  EXPECT_TRUE(store_.Events().empty());
  EXPECT_TRUE(replanned_.empty());
}

TEST_F(DeclarativeReconcilerTest, AFileClaimingAnApiMadeIdOrBrokenIsRefusedAsAWhole) {
  ConfigChange change;
  change.create_environments.push_back(EnvSpec("local", v1::APPROVAL_POLICY_AUTO));
  ASSERT_TRUE(store_.ApplyConfigChange(change).ok());
  repo_.Commit("config", kRef, {{"ferry.yaml", {kFerryYaml, ""}}});
  auto taken = Apply();
  EXPECT_TRUE(absl::IsFailedPrecondition(taken.status())) << taken.status();
  EXPECT_NE(taken.status().message().find("ferry.yaml: environments.local: an environment with this id exists"),
            std::string::npos)
      << taken.status();
  EXPECT_TRUE(store_.ListApplications()->empty());

  v1::Revision broken = repo_.Commit(
      "config", kRef, {{"ferry.yaml", {"applications:\n  web:\n    render: jsonnet\n    environments: [local]\n", ""}}});
  auto bad = Apply(broken.sha());
  ASSERT_TRUE(absl::IsInvalidArgument(bad.status())) << bad.status();
  EXPECT_NE(bad.status().message().find("ferry.yaml:3: applications.web.render: unknown render method \"jsonnet\""),
            std::string::npos)
      << bad.status();
  repo_.Commit("config", kRef, {{"other.yaml", {"", ""}}});
  EXPECT_TRUE(absl::IsInvalidArgument(Apply().status())) << "no ferry.yaml at the commit";
  EXPECT_EQ(store_.config_changes(), 1) << "only the setup wrote";
}

TEST_F(DeclarativeReconcilerTest, NotificationsChangeWithTheFileAsOneChangeAndPlanNothing) {
  const std::string with = std::string(kFerryYaml) +
                           "    notifications:\n"
                           "    - name: prod-failures\n"
                           "      environment: prod\n"
                           "      events: [deployment_failed]\n"
                           "      sink: {kind: slack, urlSecret: {file: slack/web.url}}\n";
  repo_.Commit("config", kRef, {{"ferry.yaml", {with, ""}}});
  ASSERT_TRUE(Apply().ok());
  auto web = store_.GetApplication("web");
  ASSERT_TRUE(web.ok());
  ASSERT_EQ(web->notifications_size(), 1);
  EXPECT_EQ(web->notifications(0).application_id(), "web");
  replanned_.clear();

  // Another sink: the application is updated (audited), not re-planned.
  std::string changed = with;
  changed.replace(changed.find("kind: slack"), 11, "kind: teams");
  repo_.Commit("config", kRef, {{"ferry.yaml", {changed, ""}}});
  auto r = Apply();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Changes(*r), (std::vector<std::pair<std::string, v1::ObjectAction>>{
                             {"Environment/local", v1::OBJECT_ACTION_NOOP},
                             {"Environment/prod", v1::OBJECT_ACTION_NOOP},
                             {"Application/web", v1::OBJECT_ACTION_UPDATE}}));
  EXPECT_EQ(store_.GetApplication("web")->notifications(0).sink().kind(), v1::SINK_KIND_TEAMS);
  EXPECT_TRUE(replanned_.empty()) << "who hears about a deployment changes nothing deployed";

  // A bad one refuses the whole file, naming the field; nothing changes.
  const int writes = store_.config_changes();
  std::string bad = with;
  bad.replace(bad.find("urlSecret: {file: slack/web.url}"), 32, "url: https://hooks.slack.com/services/T/B/x");
  repo_.Commit("config", kRef, {{"ferry.yaml", {bad, ""}}});
  auto refused = Apply();
  ASSERT_TRUE(absl::IsInvalidArgument(refused.status())) << refused.status();
  EXPECT_NE(refused.status().message().find(
                "ferry.yaml: applications.web: application.notifications[0].sink.url: a Slack or Teams URL is a secret"),
            std::string::npos)
      << refused.status();
  EXPECT_EQ(refused.status().message().find("T/B/x"), std::string::npos);
  std::string other_env = with;
  other_env.replace(other_env.find("environment: prod"), 17, "environment: qa");
  repo_.Commit("config", kRef, {{"ferry.yaml", {other_env, ""}}});
  EXPECT_NE(Apply().status().message().find("notifications[0].environment_id: \"qa\" is not one of the application's"),
            std::string::npos);
  EXPECT_EQ(store_.config_changes(), writes);
  EXPECT_EQ(store_.GetApplication("web")->notifications(0).sink().kind(), v1::SINK_KIND_TEAMS);

  // Removed from the file, removed from the application.
  repo_.Commit("config", kRef, {{"ferry.yaml", {kFerryYaml, ""}}});
  ASSERT_TRUE(Apply().ok());
  EXPECT_EQ(store_.GetApplication("web")->notifications_size(), 0);
}

TEST_F(DeclarativeReconcilerTest, AnEnvironmentWhoseTargetChangedReplansItsApplicationsOnly) {
  const std::string two_apps = std::string(kFerryYaml) + "  api:\n    path: apps/api\n    environments: [local]\n";
  repo_.Commit("config", kRef, {{"ferry.yaml", {two_apps, ""}}});
  ASSERT_TRUE(Apply().ok());
  replanned_.clear();

  // Only prod's target changes in the file: web (deployed there) is planned
  // again, api (local only) is not. Before, nothing was planned until
  // someone refreshed web by hand.
  std::string moved = two_apps;
  moved.replace(moved.find("/tmp/ferry-prod"), 15, "/tmp/ferry-prod2");
  repo_.Commit("config", kRef, {{"ferry.yaml", {moved, ""}}});
  auto r = Apply();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Changes(*r), (std::vector<std::pair<std::string, v1::ObjectAction>>{
                             {"Environment/local", v1::OBJECT_ACTION_NOOP},
                             {"Environment/prod", v1::OBJECT_ACTION_UPDATE},
                             {"Application/web", v1::OBJECT_ACTION_NOOP},
                             {"Application/api", v1::OBJECT_ACTION_NOOP}}));
  EXPECT_EQ(replanned_, (std::vector<std::set<std::string>>{{"web"}}));

  // A change of how prod is approved plans nothing: the plans are the same.
  replanned_.clear();
  std::string approval = moved;
  approval.replace(approval.find("approval: manual"), 16, "approval: auto");
  approval.replace(approval.find("    promoteFrom: local\n"), 23, "");
  repo_.Commit("config", kRef, {{"ferry.yaml", {approval, ""}}});
  auto a = Apply();
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(store_.GetEnvironment("prod")->approval(), v1::APPROVAL_POLICY_AUTO);
  EXPECT_TRUE(replanned_.empty());
}

TEST_F(DeclarativeReconcilerTest, ACommitTheSignaturePolicyRejectsIsRefusedAndNothingIsApplied) {
  v1::Revision bad = repo_.Commit("config", kRef, {{"ferry.yaml", {kFerryYaml, ""}}});
  repo_.Refuse(bad.sha(), "commit is not signed");
  for (bool dry_run : {false, true}) {
    for (const std::string& commit : {bad.sha(), std::string()}) {  // named, or the ref's tip
      auto refused = Apply(commit, dry_run);
      ASSERT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
      EXPECT_EQ(refused.status().message(), "revision " + bad.sha() +
                                                " of repository config is not accepted by its signature policy: "
                                                "commit is not signed");
    }
  }
  EXPECT_EQ(store_.config_changes(), 0);
  EXPECT_TRUE(store_.ListApplications()->empty());
  EXPECT_TRUE(store_.ListEnvironments()->empty());
  EXPECT_TRUE(store_.ListDeclarationSources()->empty());
  EXPECT_TRUE(replanned_.empty());
  std::vector<v1::Event> events = store_.Events();
  ASSERT_EQ(events.size(), 4u);
  for (const v1::Event& e : events) {
    EXPECT_EQ(e.action(), v1::AUDIT_ACTION_REVISION_REFUSED);
    EXPECT_EQ(e.actor().id(), "alice");
    EXPECT_EQ(e.subject().repository_id(), "config");
    EXPECT_EQ(e.subject().commit_sha(), bad.sha());
    EXPECT_EQ(e.details().fields().at("call").string_value(), "ApplyDeclarativeConfig");
    EXPECT_EQ(e.details().fields().at("path").string_value(), "ferry.yaml");
  }
}

}  // namespace
}  // namespace ferry::planner
