// The planner's domain logic over a real PostgreSQL store, with fakes at the
// repo-watcher and deployer seams and the real renderers.

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <prometheus/registry.h>
#include <google/protobuf/util/time_util.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/outbox/postgres_outbox_store.h"
#include "common/postgres/migrator.h"
#include "common/postgres/notification_listener.h"
#include "common/postgres/text_array.h"
#include "planner_migrations.h"
#include "services/planner/planner.h"
#include "services/planner/postgres_planner_store.h"
#include "services/planner/revision_consumer.h"
#include "tests/planner/fake_approval_policy.h"
#include "tests/planner/fake_live_state_source.h"
#include "tests/planner/fake_repo_source.h"
#include "tests/support/generic_plans.h"
#include "tests/support/held_lock.h"
#include "tests/support/test_database.h"

namespace ferry::planner {
namespace {

using nlohmann::json;
using testing::FakeClock;
using testing::FakeLiveStateSource;
using testing::FakeRepoSource;
using testing::FakeTree;

constexpr char kRef[] = "refs/heads/main";

std::string ConfigMap(const std::string& name, const std::string& value, int wave = 0) {
  std::string out = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n";
  if (wave != 0) out += "  annotations:\n    ferry.dev/sync-wave: \"" + std::to_string(wave) + "\"\n";
  return out + "data:\n  value: \"" + value + "\"\n";
}

v1::Actor User(const std::string& id) {
  v1::Actor a;
  a.set_kind(v1::ACTOR_KIND_USER);
  a.set_id(id);
  return a;
}

class PlannerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pool_ = db_.Pool(6);
    ASSERT_TRUE(postgres::Migrate(*pool_, PlannerMigrations()).ok());
    outbox_ = std::make_unique<outbox::PostgresOutboxStore>(pool_.get(), "planner", "planner");
    store_ = std::make_unique<PostgresPlannerStore>(pool_.get(), outbox_.get());
    options_.helm_path = std::string(FERRY_TOOLS_BIN_DIR) + "/helm";
    options_.kubectl_path = std::string(FERRY_TOOLS_BIN_DIR) + "/kubectl";
    options_.timeout = absl::Seconds(60);
    MakePlanner();
  }

  // (Re)builds the planner over the same database, as after a restart.
  void MakePlanner() {
    renderer_ = std::make_unique<Renderer>(&repo_, options_);
    metrics_ = std::make_unique<PlannerMetrics>(&registry_);
    planner_ = std::make_unique<Planner>(store_.get(), &repo_, &live_, renderer_.get(), &clock_, &notifier_,
                                         metrics_.get(), /*plan_concurrency=*/8, ParseLimits(), SyncWindowLimits(),
                                         &approvals_);
  }

  void CreateEnv(const std::string& id, v1::ApprovalPolicy approval, const std::string& promote_from = "",
                 std::vector<v1::SyncWindow> windows = {}) {
    v1::Environment env;
    env.set_id(id);
    env.mutable_target()->set_kind(v1::TARGET_KIND_HOST);
    env.mutable_target()->mutable_host()->set_root_dir("/tmp/ferry-" + id);
    env.set_approval(approval);
    env.set_promote_from(promote_from);
    for (auto& w : windows) *env.add_sync_windows() = w;
    auto made = planner_->CreateEnvironment(env, User("alice"));
    ASSERT_TRUE(made.ok()) << made.status();
  }

  v1::Application AppSpec(const std::string& id, const std::string& path, std::vector<std::string> envs,
                          std::vector<std::string> deps = {}, v1::RenderMethod method = v1::RENDER_METHOD_PLAIN) {
    v1::Application app;
    app.set_id(id);
    app.set_repository_id("repo");
    app.set_ref("main");
    app.set_path(path);
    app.set_render_method(method);
    for (auto& e : envs) app.add_environment_ids(e);
    for (auto& d : deps) app.add_depends_on(d);
    app.mutable_sync_policy()->set_automated(true);
    app.mutable_sync_policy()->set_prune(true);
    return app;
  }

  void CreateApp(const v1::Application& app) {
    auto made = planner_->CreateApplication(app, User("alice"));
    ASSERT_TRUE(made.ok()) << made.status();
  }

  // Applications a, b, c and d in "local" (automatic approval), each
  // planned once by one commit.
  void PlanFourApps() {
  CreateEnv("local", v1::APPROVAL_POLICY_AUTO);
  for (const char* app : {"a", "b", "c", "d"}) CreateApp(AppSpec(app, std::string("apps/") + app, {"local"}));
  ASSERT_EQ(*planner_->HandleRevision(repo_.Commit("repo", kRef,
                                                   {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}},
                                                    {"apps/b/cm.yaml", {ConfigMap("b", "1"), ""}},
                                                    {"apps/c/cm.yaml", {ConfigMap("c", "1"), ""}},
                                                    {"apps/d/cm.yaml", {ConfigMap("d", "1"), ""}}})),
            4);
  }
  std::vector<v1::Plan> Plans(const std::string& app = "", const std::string& env = "") {
    v1::ListPlansRequest req;
    req.set_application_id(app);
    req.set_environment_id(env);
    req.set_view(v1::PLAN_VIEW_FULL);
    req.set_page_size(1000);
    auto r = planner_->ListPlans(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return {r->plans().begin(), r->plans().end()};
  }

  std::vector<v1::AuditAction> AuditActions() {
    auto events = outbox_->FetchUnsent(10000);
    EXPECT_TRUE(events.ok());
    std::vector<v1::AuditAction> out;
    for (auto& e : *events) out.push_back(e.event.action());
    return out;
  }
  int CountAudit(v1::AuditAction action) {
    int n = 0;
    for (auto a : AuditActions()) n += a == action;
    return n;
  }

  std::vector<std::string> ReleasedIds(const std::string& cursor = "") {
    auto r = planner_->ReleasedAfter(cursor, 1000);
    EXPECT_TRUE(r.ok()) << r.status();
    std::vector<std::string> ids;
    for (auto& rp : *r) ids.push_back(rp.plan.id());
    return ids;
  }

  // Deploys a plan the way the deployer does: acknowledge, apply, report.
  void Deploy(const v1::Plan& plan, const std::string& deployment = "") {
    v1::AcknowledgePlanRequest ack;
    ack.set_plan_id(plan.id());
    ack.set_deployment_id(deployment.empty() ? "dep-" + plan.id() : deployment);
    auto a = planner_->AcknowledgePlan(ack);
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE(a->proceed()) << a->reason();
    v1::Plan full = *planner_->GetPlan(plan.id(), v1::PLAN_VIEW_FULL);
    live_.Apply(full);
    v1::ReportPlanResultRequest rep;
    rep.set_plan_id(plan.id());
    rep.set_deployment_id(ack.deployment_id());
    rep.set_state(v1::PLAN_STATE_SUCCEEDED);
    auto r = planner_->ReportPlanResult(rep);
    ASSERT_TRUE(r.ok()) << r.status();
  }

  ferry::testing::TestDatabase db_;
  std::unique_ptr<postgres::ConnectionPool> pool_;
  std::unique_ptr<outbox::PostgresOutboxStore> outbox_;
  std::unique_ptr<PostgresPlannerStore> store_;
  RendererOptions options_;
  FakeRepoSource repo_;
  FakeLiveStateSource live_;
  FakeClock clock_{absl::FromCivil(absl::CivilMinute(2026, 11, 26, 12, 0), absl::UTCTimeZone())};
  concurrency::ChangeSignal notifier_;
  prometheus::Registry registry_;
  std::unique_ptr<Renderer> renderer_;
  std::unique_ptr<PlannerMetrics> metrics_;
  testing::FakeApprovalPolicy approvals_;
  std::unique_ptr<Planner> planner_;
};

TEST_F(PlannerTest, CrudRejectsBadDefinitionsNamingTheFieldAndAuditsChanges) {
  CreateEnv("local", v1::APPROVAL_POLICY_AUTO);
  int before = static_cast<int>(AuditActions().size());

  auto unknown_env = planner_->CreateApplication(AppSpec("web", "apps/web", {"prod"}), User("alice"));
  ASSERT_TRUE(absl::IsInvalidArgument(unknown_env.status()));
  EXPECT_NE(unknown_env.status().message().find("application.environment_ids[0]: unknown environment \"prod\""),
            std::string::npos);
  auto escape = planner_->CreateApplication(AppSpec("web", "apps/../../x", {"local"}), User("alice"));
  ASSERT_TRUE(absl::IsInvalidArgument(escape.status()));
  EXPECT_NE(escape.status().message().find("application.path"), std::string::npos);
  auto method = planner_->CreateApplication(AppSpec("web", "apps/web", {"local"}, {}, v1::RENDER_METHOD_UNSPECIFIED),
                                            User("alice"));
  ASSERT_TRUE(absl::IsInvalidArgument(method.status()));
  EXPECT_NE(method.status().message().find("application.render_method"), std::string::npos);
  EXPECT_EQ(static_cast<int>(AuditActions().size()), before) << "a rejected change must not be audited as made";
  EXPECT_TRUE(absl::IsNotFound(planner_->GetApplication("web").status()));

  CreateApp(AppSpec("db", "apps/db", {"local"}));
  CreateApp(AppSpec("web", "apps/web", {"local"}, {"db"}));
  EXPECT_EQ(CountAudit(v1::AUDIT_ACTION_APPLICATION_CREATED), 2);
  google::protobuf::FieldMask mask;
  mask.add_paths("depends_on");
  v1::Application cyc = AppSpec("db", "", {}, {"web"});
  auto cycle = planner_->UpdateApplication(cyc, mask, User("alice"));
  ASSERT_TRUE(absl::IsInvalidArgument(cycle.status())) << cycle.status();
  EXPECT_NE(cycle.status().message().find("cycle: db -> web -> db"), std::string::npos) << cycle.status();
  EXPECT_EQ(planner_->GetApplication("db")->depends_on_size(), 0) << "nothing half-applied";

  auto in_use = planner_->DeleteEnvironment("local", User("alice"));
  EXPECT_TRUE(absl::IsFailedPrecondition(in_use)) << in_use;
  ASSERT_TRUE(planner_->DeleteApplication("web", User("alice")).ok());
  EXPECT_EQ(CountAudit(v1::AUDIT_ACTION_APPLICATION_DELETED), 1);
  auto events = outbox_->FetchUnsent(100);
  EXPECT_EQ(events->back().event.actor().id(), "alice");
}

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
    render: plain
    environments: [local, prod]
)";

TEST_F(PlannerTest, DeclarativeConfigIsAppliedAndReconciledFromLaterRevisions) {
  FakeTree tree = {{"ferry.yaml", {kFerryYaml, ""}}, {"apps/web/cm.yaml", {ConfigMap("web", "1"), ""}}};
  v1::Revision r1 = repo_.Commit("repo", kRef, tree);
  v1::ApplyDeclarativeConfigRequest req;
  req.mutable_source()->set_repository_id("repo");
  req.mutable_source()->set_ref("main");
  auto applied = planner_->ApplyDeclarativeConfig(req, User("alice"));
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(applied->commit(), r1.sha());
  EXPECT_EQ(applied->changes_size(), 3);
  auto web = planner_->GetApplication("web");
  ASSERT_TRUE(web.ok());
  EXPECT_EQ(web->declared_by().path(), "ferry.yaml");
  EXPECT_EQ(web->declared_by().commit(), r1.sha());
  EXPECT_EQ(CountAudit(v1::AUDIT_ACTION_ENVIRONMENT_CREATED), 2);
  EXPECT_EQ(CountAudit(v1::AUDIT_ACTION_APPLICATION_CREATED), 1);
  // The new application was planned at once in local; prod (promoteFrom
  // local) gets its plan when the revision succeeds in local.
  EXPECT_EQ(Plans("web", "local").size(), 1u);
  EXPECT_EQ(Plans("web", "prod").size(), 0u);

  google::protobuf::FieldMask mask;
  auto refused = planner_->UpdateApplication(*web, mask, User("alice"));
  EXPECT_TRUE(absl::IsFailedPrecondition(refused.status())) << refused.status();

  // A revision that changes ferry.yaml reconciles: prod goes, web loses it, api joins.
  std::string next = R"(environments:
  local:
    host: {rootDir: /tmp/ferry-local}
    approval: auto
applications:
  web:
    path: apps/web
    environments: [local]
  api:
    path: apps/api
    environments: [local]
)";
  tree["ferry.yaml"].data = next;
  tree["apps/api/cm.yaml"].data = ConfigMap("api", "1");
  v1::Revision r2 = repo_.Commit("repo", kRef, tree);
  ASSERT_TRUE(planner_->HandleRevision(r2).ok());
  EXPECT_TRUE(absl::IsNotFound(planner_->GetEnvironment("prod").status()));
  EXPECT_EQ(planner_->GetApplication("web")->environment_ids_size(), 1);
  EXPECT_TRUE(planner_->GetApplication("api").ok());
  EXPECT_EQ(CountAudit(v1::AUDIT_ACTION_ENVIRONMENT_DELETED), 1);

  // A broken ferry.yaml is refused as a whole; the previous state stays.
  tree["ferry.yaml"].data = "applications:\n  web:\n    render: jsonnet\n    environments: [local]\n";
  v1::Revision r3 = repo_.Commit("repo", kRef, tree);
  int refused_before = CountAudit(v1::AUDIT_ACTION_RENDER_FAILED);
  ASSERT_TRUE(planner_->HandleRevision(r3).ok());
  ASSERT_TRUE(planner_->HandleRevision(r3).ok()) << "replayed";
  EXPECT_TRUE(planner_->GetApplication("api").ok());
  EXPECT_EQ(CountAudit(v1::AUDIT_ACTION_RENDER_FAILED), refused_before + 1) << "the refusal is audited once";
  req.set_commit(r3.sha());
  auto bad = planner_->ApplyDeclarativeConfig(req, User("alice"));
  ASSERT_TRUE(absl::IsInvalidArgument(bad.status()));
  EXPECT_NE(bad.status().message().find("ferry.yaml:3: applications.web.render: unknown render method \"jsonnet\""),
            std::string::npos)
      << bad.status();
}

// Issue #23: a revision reads only the applications its changed paths
// touch; one whose definition alone its ferry.yaml changed (none of its
// files) is planned all the same, and an untouched one is not.
TEST_F(PlannerTest, AnApplicationWhoseDefinitionAloneChangedIsPlanned) {
  auto yaml = [](bool web_prunes) {
    return absl::StrCat(
        "environments:\n  local:\n    host: {rootDir: /tmp/ferry-local}\n    approval: auto\n"
        "applications:\n  web:\n    path: apps/web\n    environments: [local]\n    sync: {automated: true",
        web_prunes ? ", prune: true" : "", "}\n  api:\n    path: apps/api\n    environments: [local]\n"
        "    sync: {automated: true}\n");
  };
  FakeTree tree = {{"ferry.yaml", {yaml(false), ""}},
                   {"apps/web/cm.yaml", {ConfigMap("web", "1"), ""}},
                   {"apps/api/cm.yaml", {ConfigMap("api", "1"), ""}}};
  repo_.Commit("repo", kRef, tree);
  v1::ApplyDeclarativeConfigRequest req;
  req.mutable_source()->set_repository_id("repo");
  req.mutable_source()->set_ref("main");
  ASSERT_TRUE(planner_->ApplyDeclarativeConfig(req, User("alice")).ok());
  const size_t web = Plans("web", "local").size(), api = Plans("api", "local").size();
  tree["ferry.yaml"].data = yaml(true);
  v1::Revision r2 = repo_.Commit("repo", kRef, tree);
  ASSERT_EQ(r2.changed_paths_size(), 1) << "only ferry.yaml changed";
  absl::StatusOr<int> made = planner_->HandleRevision(r2);
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_EQ(*made, 1);
  EXPECT_EQ(Plans("web", "local").size(), web + 1) << "web's definition changed";
  EXPECT_EQ(Plans("api", "local").size(), api) << "nothing of api changed";
  EXPECT_TRUE(planner_->GetApplication("web")->sync_policy().prune());
}

TEST_F(PlannerTest, ApplicationDeclaredForAnotherRepositoryIsPlannedAtItsOwnTip) {
  repo_.Commit("apps-repo", kRef, {{"web/cm.yaml", {ConfigMap("web", "1"), ""}}});
  std::string yaml = "environments:\n  local:\n    host: {rootDir: /tmp/x}\n    approval: auto\n";
  FakeTree config = {{"ferry.yaml", {yaml, ""}}};
  repo_.Commit("config", kRef, config);
  v1::ApplyDeclarativeConfigRequest req;
  req.mutable_source()->set_repository_id("config");
  req.mutable_source()->set_ref("main");
  ASSERT_TRUE(planner_->ApplyDeclarativeConfig(req, User("alice")).ok());
  config["ferry.yaml"].data = yaml + "applications:\n  web:\n    repository: apps-repo\n    path: web\n    environments: [local]\n";
  v1::Revision rev = repo_.Commit("config", kRef, config);
  ASSERT_EQ(*planner_->HandleRevision(rev), 1);
  std::vector<v1::Plan> plans = Plans("web");
  ASSERT_EQ(plans.size(), 1u);
  EXPECT_EQ(plans[0].target_revision().repository_id(), "apps-repo");
  EXPECT_EQ(plans[0].target_revision().sha(), *repo_.ResolveRef("apps-repo", kRef));
}

// Issue #23: the render cache was never evicted. Entries unused for the
// maximum age go, entries written or read since stay (a read marks an old
// entry used again), and a count limit keeps the most recently used.
TEST_F(PlannerTest, RenderCacheEvictionDropsUnusedEntriesAndKeepsLiveOnes) {
  auto manifests = [](const std::string& name) {
    v1::Manifest m;
    m.set_source_path(name);
    return std::vector<v1::Manifest>{m};
  };
  for (const std::string key : {"old", "old-but-read", "fresh", "recent-1", "recent-2"})
    ASSERT_TRUE(store_->PutCachedRender(key, manifests(key)).ok());
  // Backdate the use time of some entries, as if written that long ago.
  auto age = [&](const std::string& key, const std::string& interval) {
    ASSERT_TRUE(pool_->RunInTransaction([&](pqxx::work& txn) {
                       txn.exec_params("UPDATE planner.render_cache SET use_time = now() - $2::interval WHERE key = $1",
                                       key, interval);
                       return absl::OkStatus();
                     })
                    .ok());
  };
  age("old", "8 days");
  age("old-but-read", "8 days");
  age("recent-1", "2 hours");
  age("recent-2", "3 hours");
  // A plan's read of an old entry marks it used.
  absl::StatusOr<std::optional<std::vector<v1::Manifest>>> read = store_->GetCachedRender("old-but-read");
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ((**read)[0].source_path(), "old-but-read");

  // What is cached, read without marking anything used.
  auto cached = [&] {
    std::set<std::string> keys;
    EXPECT_TRUE(pool_->RunInTransaction([&](pqxx::work& txn) {
                       for (const auto& row : txn.exec("SELECT key FROM planner.render_cache"))
                         keys.insert(row[0].as<std::string>());
                       return absl::OkStatus();
                     })
                    .ok());
    return keys;
  };
  absl::StatusOr<int64_t> gone = store_->EvictCachedRenders(absl::Hours(24 * 7), /*keep_at_most=*/0);
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_EQ(*gone, 1);
  EXPECT_EQ(cached(), (std::set<std::string>{"fresh", "old-but-read", "recent-1", "recent-2"}));

  // At most two: the two least recently used (recent-2, then recent-1) go.
  gone = store_->EvictCachedRenders(absl::Hours(24 * 7), /*keep_at_most=*/2);
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_EQ(*gone, 2);
  EXPECT_EQ(cached(), (std::set<std::string>{"fresh", "old-but-read"}));
  // A read of an entry used within the hour does not write (no new use time
  // to keep), and it reads what was put.
  EXPECT_EQ((*store_->GetCachedRender("fresh"))->at(0).source_path(), "fresh");

  // Nothing left to evict: a second pass deletes nothing.
  EXPECT_EQ(*store_->EvictCachedRenders(absl::Hours(24 * 7), 2), 0);
}

// The render cache and commit authors are written in one statement each that
// turns off its own flush wait (issue #23: one round trip instead of four).
// They are stored, a second write of the same key keeps the first, and the
// setting ends with the statement: the connection's next transaction waits
// for its flush as before.
TEST_F(PlannerTest, UnflushedWritesStoreTheirRowsAndLeaveTheConnectionFlushing) {
  std::unique_ptr<postgres::ConnectionPool> one = db_.Pool(1);
  outbox::PostgresOutboxStore outbox(one.get(), "planner", "planner");
  PostgresPlannerStore store(one.get(), &outbox);
  // The test cluster runs with synchronous_commit off; this session waits.
  ASSERT_TRUE(one->RunStatement([](pqxx::transaction_base& txn) {
                   txn.exec0("SET synchronous_commit TO on");
                   return absl::OkStatus();
                 }).ok());
  v1::Manifest m;
  m.set_source_path("apps/a/config.yaml");
  ASSERT_TRUE(store.PutCachedRender("key-1", {m}).ok());
  v1::Manifest other;
  other.set_source_path("apps/b/config.yaml");
  ASSERT_TRUE(store.PutCachedRender("key-1", {other}).ok());
  absl::StatusOr<std::optional<std::vector<v1::Manifest>>> cached = store.GetCachedRender("key-1");
  ASSERT_TRUE(cached.ok()) << cached.status();
  ASSERT_TRUE(cached->has_value());
  EXPECT_EQ((**cached)[0].source_path(), "apps/a/config.yaml");
  v1::CommitAuthor author;
  author.set_name("Ada");
  author.set_email("ada@example.com");
  ASSERT_TRUE(store.RecordCommitAuthor("repo", std::string(40, 'a'), author).ok());
  absl::StatusOr<std::optional<v1::CommitAuthor>> got = store.GetCommitAuthor("repo", std::string(40, 'a'));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->email(), "ada@example.com");
  absl::StatusOr<std::string> setting = one->RunInTransactionWithResult<std::string>(
      [](pqxx::work& txn) -> absl::StatusOr<std::string> {
        return txn.exec1("SHOW synchronous_commit")[0].as<std::string>();
      });
  ASSERT_TRUE(setting.ok()) << setting.status();
  EXPECT_EQ(*setting, "on");
}

// `n` plans (seq and id plan-<g> for g in 1..n) of `apps` applications in
// "local", each in the state the SQL expression `state_of_g` gives, released
// in seq order when `released`; then ANALYZE, as autovacuum would.
void InsertPlans(postgres::ConnectionPool& pool, int n, int apps, const std::string& state_of_g, bool released) {
  absl::Status s = pool.RunInTransaction([&](pqxx::work& txn) {
    txn.exec0(absl::StrCat("INSERT INTO planner.plans (seq, id, application_id, environment_id, state, trigger, "
                           "target_sha, hold_reason, body, definition_key, release_seq) "
                           "SELECT g, 'plan-' || g, 'app-' || (g % ", apps, "), 'local', ", state_of_g,
                           ", 1, repeat('a', 40), 0, ''::bytea, 'k', ", released ? "g" : "NULL",
                           " FROM generate_series(1, ", n, ") g"));
    txn.exec0("ANALYZE planner.plans");
    return absl::OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s;
}

// Issue #23: the deployers' plan stream reads the next released plan with a
// prepared statement; its generic plan (the one PostgreSQL settles on after
// five calls) must read from the cursor on in release order, not AND every
// plan ever open with every plan released after the cursor, a cost growing
// with the plans the table ever held.
TEST_F(PlannerTest, TheReleasedPlanStreamReadsFromItsCursorWhateverTheTableHolds) {
  std::unique_ptr<postgres::ConnectionPool> one = db_.Pool(1);
  outbox::PostgresOutboxStore outbox(one.get(), "planner", "planner");
  PostgresPlannerStore store(one.get(), &outbox);
  // 5,000 plans: most finished long ago (state 5), their history in the
  // open-plans index; the last 3 released and approved.
  InsertPlans(*one, 5000, 100, "CASE WHEN g > 4997 THEN 2 ELSE 5 END", /*released=*/true);
  absl::StatusOr<std::vector<ReleasedPlan>> next = store.ListReleased(4990, 1, 1 << 20);  // prepares the statement
  ASSERT_TRUE(next.ok()) << next.status();
  ASSERT_EQ(next->size(), 1u);
  EXPECT_EQ(next->front().release_seq, 4998);
  absl::StatusOr<std::string> plan = one->RunStatementWithResult<std::string>(
      [](pqxx::transaction_base& txn) -> absl::StatusOr<std::string> {
        txn.exec0("SET plan_cache_mode TO force_generic_plan");
        std::string out;
        for (const auto& row : txn.exec("EXPLAIN EXECUTE planner_list_released(4990, 1, 1048576)"))
          out += row[0].as<std::string>() + "\n";
        txn.exec0("RESET plan_cache_mode");
        return out;
      });
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_NE(plan->find("Index Scan using plans_release_order"), std::string::npos) << *plan;
  EXPECT_EQ(plan->find("plans_open"), std::string::npos) << *plan;
}

// Issue #23: with thousands of plans released and not finished (a commit
// touching 10,000 applications), PostgreSQL planned the released-plans read
// afresh at every call, finding a plan made for the cursor's value cheaper
// than the generic one: 7,437 plans for 7,437 calls, 1.8 s in all. It must
// settle on the generic plan, whatever the table holds.
TEST_F(PlannerTest, TheReleasedPlanReadIsNotPlannedAfreshAtEveryCall) {
  std::unique_ptr<postgres::ConnectionPool> one = db_.Pool(1);
  outbox::PostgresOutboxStore outbox(one.get(), "planner", "planner");
  PostgresPlannerStore store(one.get(), &outbox);
  // 10,000 plans, the last 8,000 released and approved (not finished).
  InsertPlans(*one, 10000, 1000, "CASE WHEN g > 2000 THEN 2 ELSE 5 END", /*released=*/true);
  // The stream near its end, as while the last plans of the commit go out.
  for (int i = 0; i < 12; ++i) {
    absl::StatusOr<std::vector<ReleasedPlan>> page = store.ListReleased(9990 + (i % 5), 10, 1 << 20);
    ASSERT_TRUE(page.ok()) << page.status();
    ASSERT_FALSE(page->empty());
    EXPECT_EQ(page->front().release_seq, 9991 + (i % 5));
  }
  ferry::testing::ExpectGenericPlansKept(*one, {"planner_list_released"});
}

// Issue #23: the batched statements over arrays (the plan insert's claim
// and open-plan read, the quiet plan update) were planned afresh at every
// call: a plan made for the arrays' lengths always looked cheaper than the
// generic one. They must settle on their generic plan, which probes the
// pairs or ids one by one through an index.
TEST_F(PlannerTest, TheBatchedStatementsOverArraysAreNotPlannedAfreshAtEveryCall) {
  std::unique_ptr<postgres::ConnectionPool> one = db_.Pool(1);
  outbox::PostgresOutboxStore outbox(one.get(), "planner", "planner");
  PostgresPlannerStore store(one.get(), &outbox);  // prepares its statements on `one`
  InsertPlans(*one, 10000, 1000, "CASE WHEN g > 9000 THEN 1 ELSE 5 END", /*released=*/false);
  const std::string apps = postgres::TextArray({"app-1", "app-2", "app-3"});
  const std::string envs = postgres::TextArray({"local", "local", "local"});
  const std::string three = postgres::TextArray({"x", "y", "z"});
  const std::string flags = postgres::TextArray({"t", "t", "f"});
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(one->RunInTransaction([&](pqxx::work& txn) {
                     EXPECT_EQ(txn.exec_prepared("planner_claim_plan_seqs", apps, envs, three, three, flags).size(), 3u);
                     EXPECT_EQ(txn.exec_prepared("planner_open_plans_of_for_update", apps, envs).size(), 3u);
                     txn.exec_prepared("planner_update_plan_versions", three, three, three, three, three, three);
                     txn.exec_prepared("planner_release_batch", three);
                     EXPECT_TRUE(txn.exec_prepared("planner_get_caches", three).empty());
                     return absl::OkStatus();
                   }).ok());
  }
  ferry::testing::ExpectGenericPlansKept(*one, {"planner_claim_plan_seqs", "planner_open_plans_of_for_update",
                               "planner_update_plan_versions", "planner_release_batch", "planner_get_caches"});
}

// Issue #23: the plan stream reads a page of released plans a statement,
// bounded by count and by their bodies' bytes: none past the one that
// reaches the bound, so a plan larger than it comes alone.
TEST_F(PlannerTest, TheReleasedPlanStreamReadsPagesBoundedByCountAndBytes) {
  std::unique_ptr<postgres::ConnectionPool> one = db_.Pool(1);
  outbox::PostgresOutboxStore outbox(one.get(), "planner", "planner");
  PostgresPlannerStore store(one.get(), &outbox);
  const std::vector<size_t> sizes = {400'000, 400'000, 400'000, 100, 3'000'000, 100};
  ASSERT_TRUE(one->RunInTransaction([&](pqxx::work& txn) {
                   for (size_t i = 0; i < sizes.size(); ++i) {
                     v1::Plan p;
                     p.set_id(absl::StrCat("plan-", i + 1));
                     p.set_state(v1::PLAN_STATE_APPROVED);
                     p.add_manifests()->set_json(std::string(sizes[i], 'x'));
                     txn.exec_params0("INSERT INTO planner.plans (seq, id, application_id, environment_id, state, "
                                      "trigger, target_sha, hold_reason, body, definition_key, release_seq) "
                                      "VALUES ($1, $2, 'a', 'local', 2, 1, '', 0, $3, 'k', $1)",
                                      static_cast<int64_t>(i + 1), p.id(), pqxx::binarystring(p.SerializeAsString()));
                   }
                   return absl::OkStatus();
                 }).ok());
  auto seqs = [&](int64_t after, int limit, int64_t max_bytes) {
    std::vector<int64_t> out;
    absl::StatusOr<std::vector<ReleasedPlan>> page = store.ListReleased(after, limit, max_bytes);
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok()) return out;
    for (const ReleasedPlan& rp : *page) {
      out.push_back(rp.release_seq);
      EXPECT_EQ(rp.plan.manifests(0).json().size(), sizes[rp.release_seq - 1]);
    }
    return out;
  };
  EXPECT_EQ(seqs(0, 64, 1 << 20), (std::vector<int64_t>{1, 2, 3})) << "the third reaches 1 MiB";
  EXPECT_EQ(seqs(3, 64, 1 << 20), (std::vector<int64_t>{4, 5})) << "the 3 MB plan after a small one";
  EXPECT_EQ(seqs(4, 64, 1 << 20), (std::vector<int64_t>{5})) << "a plan over the bound comes alone";
  EXPECT_EQ(seqs(5, 64, 1 << 20), (std::vector<int64_t>{6}));
  EXPECT_EQ(seqs(0, 2, int64_t{1} << 40), (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(seqs(6, 64, 1 << 20).empty());
}

// Issue #23: a commit's plans are looked up all at once (HavePlansFor), each
// key by application, environment, commit and definitions, in their order.
TEST_F(PlannerTest, TheStoreLooksUpManyPlansInOneRead) {
  ASSERT_TRUE(db_.Pool(1)
                  ->RunInTransaction([](pqxx::work& txn) {
                    txn.exec0("INSERT INTO planner.plans (seq, id, application_id, environment_id, state, trigger, "
                              "target_sha, hold_reason, body, definition_key) VALUES "
                              "(1, 'plan-1', 'a', 'local', 5, 1, repeat('a', 40), 0, ''::bytea, 'k1'), "
                              "(2, 'plan-2', 'b\"x', 'local', 2, 1, repeat('b', 40), 0, ''::bytea, 'k2')");
                    return absl::OkStatus();
                  })
                  .ok());
  const std::string a(40, 'a'), b(40, 'b');
  std::vector<PlanStore::PlanKey> keys = {
      {"a", "local", a, "k1"},     // planned
      {"a", "local", a, "k2"},     // other definitions
      {"a", "prod", a, "k1"},      // other environment
      {"a", "local", b, "k1"},     // other commit
      {"b\"x", "local", b, "k2"}, // planned (a quote in the id)
      {"c", "local", a, "k1"},     // other application
  };
  absl::StatusOr<std::vector<bool>> have = store_->HavePlansFor(keys);
  ASSERT_TRUE(have.ok()) << have.status();
  EXPECT_EQ(*have, (std::vector<bool>{true, false, false, false, true, false}));
  absl::StatusOr<std::vector<bool>> none = store_->HavePlansFor({});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
}

// Issue #23: the deployer's acknowledgement and outcome of each plan are one
// read and one conditional write (MutatePlanQuietly), the plan's row never
// locked; a plan changed in between is changed again from its new version,
// and nothing of the other change is lost.
TEST_F(PlannerTest, AQuietChangeLocksNothingAndIsMadeAgainOnAPlanChangedMeanwhile) {
  v1::Plan p;
  p.set_id("plan-1");
  p.set_application_id("a");
  p.set_environment_id("local");
  p.set_state(v1::PLAN_STATE_EXECUTING);
  p.set_deployment_id("dep-1");
  ASSERT_TRUE(db_.Pool(1)
                  ->RunInTransaction([&](pqxx::work& txn) {
                    txn.exec_params0("INSERT INTO planner.plans (seq, id, application_id, environment_id, state, "
                                     "trigger, target_sha, hold_reason, body, definition_key, deployment_id) "
                                     "VALUES (1, 'plan-1', 'a', 'local', 4, 1, '', 0, $1, 'k', 'dep-1')",
                                     pqxx::binarystring(p.SerializeAsString()));
                    return absl::OkStatus();
                  })
                  .ok());
  std::unique_ptr<postgres::ConnectionPool> other_pool = db_.Pool(1);
  outbox::PostgresOutboxStore other_outbox(other_pool.get(), "planner", "planner");
  PostgresPlannerStore other(other_pool.get(), &other_outbox);
  int calls = 0;
  absl::StatusOr<v1::Plan> done =
      store_->MutatePlanQuietly("plan-1", [&](v1::Plan& plan) -> absl::StatusOr<std::vector<v1::Event>> {
        if (++calls == 1) {
          // Not locked: another session takes the row at once, and changes it.
          absl::Status free = other_pool->RunInTransaction([](pqxx::work& txn) {
            txn.exec("SELECT 1 FROM planner.plans WHERE id = 'plan-1' FOR UPDATE NOWAIT");
            return absl::OkStatus();
          });
          EXPECT_TRUE(free.ok()) << "the plan's row is locked while it changes: " << free;
          if (free.ok()) {
            absl::StatusOr<v1::Plan> changed =
                other.MutatePlan("plan-1", [](v1::Plan& q) -> absl::StatusOr<std::vector<v1::Event>> {
                  q.set_hold_message("changed meanwhile");
                  return std::vector<v1::Event>();
                });
            EXPECT_TRUE(changed.ok()) << changed.status();
          }
        }
        plan.set_state(v1::PLAN_STATE_SUCCEEDED);
        return std::vector<v1::Event>();
      });
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(calls, 2) << "the change made meanwhile was not seen";
  absl::StatusOr<v1::Plan> stored = store_->GetPlan("plan-1");
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->state(), v1::PLAN_STATE_SUCCEEDED);
  EXPECT_EQ(stored->hold_message(), "changed meanwhile");
  // Unchanged in between: one call, and its change stored.
  calls = 0;
  done = store_->MutatePlanQuietly("plan-1", [&](v1::Plan& plan) -> absl::StatusOr<std::vector<v1::Event>> {
    ++calls;
    plan.mutable_failure()->set_message("noted");
    return std::vector<v1::Event>();
  });
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(calls, 1);
  stored = store_->GetPlan("plan-1");
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->failure().message(), "noted");
  EXPECT_EQ(stored->hold_message(), "changed meanwhile");
  EXPECT_EQ(stored->state(), v1::PLAN_STATE_SUCCEEDED);
}

// Issue #23: a quiet change of a plan this store wrote last (inserted and
// released it, or changed it quietly) writes at the version it wrote,
// without reading the plan first; a plan another replica changed since is
// still changed from its new version, nothing of the other change lost.
TEST_F(PlannerTest, AQuietChangeOfAPlanThisStoreWroteLastReadsNothingAndOverwritesNoOtherChange) {
  CreateEnv("local", v1::APPROVAL_POLICY_AUTO);
  CreateApp(AppSpec("a", "apps/a", {"local"}));
  ASSERT_EQ(*planner_->HandleRevision(repo_.Commit("repo", kRef, {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}}})), 1);
  const std::string id = Plans("a")[0].id();
  ASSERT_FALSE(ReleasedIds().empty()) << "released by this store";
  const int64_t unread = store_->quiet_writes_unread();
  int calls = 0;
  auto quietly = [&](const std::function<void(v1::Plan&)>& change) {
    return store_->MutatePlanQuietly(id, [&](v1::Plan& plan) -> absl::StatusOr<std::vector<v1::Event>> {
      ++calls;
      change(plan);
      return std::vector<v1::Event>();
    });
  };
  // Acknowledged: inserted and released here, so written at the release's version.
  ASSERT_TRUE(quietly([](v1::Plan& p) {
                p.set_state(v1::PLAN_STATE_EXECUTING);
                p.set_deployment_id("dep-1");
              }).ok());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(store_->quiet_writes_unread(), unread + 1);
  // Another replica changes it.
  std::unique_ptr<postgres::ConnectionPool> other_pool = db_.Pool(1);
  outbox::PostgresOutboxStore other_outbox(other_pool.get(), "planner", "planner");
  PostgresPlannerStore other(other_pool.get(), &other_outbox);
  ASSERT_TRUE(other.MutatePlanQuietly(id, [](v1::Plan& q) -> absl::StatusOr<std::vector<v1::Event>> {
                     q.set_hold_message("changed meanwhile");
                     return std::vector<v1::Event>();
                   }).ok());
  // This store's guess is outdated: the change is made again from the row.
  calls = 0;
  ASSERT_TRUE(quietly([](v1::Plan& p) { p.mutable_failure()->set_message("noted"); }).ok());
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(store_->quiet_writes_unread(), unread + 1);
  absl::StatusOr<v1::Plan> stored = store_->GetPlan(id);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->hold_message(), "changed meanwhile");
  EXPECT_EQ(stored->failure().message(), "noted");
  EXPECT_EQ(stored->state(), v1::PLAN_STATE_EXECUTING);
  EXPECT_EQ(stored->deployment_id(), "dep-1");
  // A change made under the lock is not guessed from: the next one reads,
  // and the one after it does not.
  ASSERT_TRUE(quietly([](v1::Plan& p) { p.set_hold_message("again"); }).ok());
  EXPECT_EQ(store_->quiet_writes_unread(), unread + 1);
  calls = 0;
  ASSERT_TRUE(quietly([](v1::Plan& p) { p.set_state(v1::PLAN_STATE_SUCCEEDED); }).ok());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(store_->quiet_writes_unread(), unread + 2);
  stored = store_->GetPlan(id);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->state(), v1::PLAN_STATE_SUCCEEDED);
  EXPECT_EQ(stored->hold_message(), "again");
  EXPECT_EQ(stored->failure().message(), "noted");
  // The other replica's next quiet change reads the row: its own last write is outdated.
  ASSERT_TRUE(other.MutatePlanQuietly(id, [](v1::Plan& q) -> absl::StatusOr<std::vector<v1::Event>> {
                     q.set_hold_message("other again");
                     return std::vector<v1::Event>();
                   }).ok());
  stored = store_->GetPlan(id);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->state(), v1::PLAN_STATE_SUCCEEDED);
  EXPECT_EQ(stored->hold_message(), "other again");
}

// Issue #23: the quiet changes of several plans this store wrote last (the
// outcomes of one ReportPlanResults call) go in one statement; a plan
// another replica changed since is changed from its new version, a plan's
// second change follows its first, and a refused change is refused alone.
TEST_F(PlannerTest, QuietChangesOfSeveralPlansGoInOneStatementAndOverwriteNoOtherChange) {
  ASSERT_NO_FATAL_FAILURE(PlanFourApps());
  const std::string a = Plans("a")[0].id(), b = Plans("b")[0].id(), c = Plans("c")[0].id(), d = Plans("d")[0].id();
  auto change = [](const std::function<absl::Status(v1::Plan&)>& f) -> PlannerStore::MutateFn {
    return [f](v1::Plan& p) -> absl::StatusOr<std::vector<v1::Event>> {
      absl::Status s = f(p);
      if (!s.ok()) return s;
      return std::vector<v1::Event>();
    };
  };
  auto execute = [&](const std::string& dep) {
    return change([dep](v1::Plan& p) {
      p.set_state(v1::PLAN_STATE_EXECUTING);
      p.set_deployment_id(dep);
      return absl::OkStatus();
    });
  };
  // Acknowledged, all four together: released by this store, written at the release's version.
  const int64_t batched = store_->quiet_writes_batched();
  std::vector<absl::StatusOr<v1::Plan>> done =
      store_->MutatePlansQuietly({{a, execute("dep-a")}, {b, execute("dep-b")}, {c, execute("dep-c")},
                                  {d, execute("dep-d")}});
  ASSERT_EQ(done.size(), 4u);
  for (const auto& p : done) ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(store_->quiet_writes_batched(), batched + 4);
  // Another replica changes b.
  std::unique_ptr<postgres::ConnectionPool> other_pool = db_.Pool(1);
  outbox::PostgresOutboxStore other_outbox(other_pool.get(), "planner", "planner");
  PostgresPlannerStore other(other_pool.get(), &other_outbox);
  ASSERT_TRUE(other.MutatePlanQuietly(b, [](v1::Plan& q) -> absl::StatusOr<std::vector<v1::Event>> {
                     q.set_hold_message("changed meanwhile");
                     return std::vector<v1::Event>();
                   }).ok());
  auto succeed = change([](v1::Plan& p) {
    p.set_state(v1::PLAN_STATE_SUCCEEDED);
    return absl::OkStatus();
  });
  auto note = change([](v1::Plan& p) {
    p.mutable_failure()->set_message("noted after");
    return absl::OkStatus();
  });
  auto refuse = change([](v1::Plan&) { return absl::FailedPreconditionError("refused"); });
  done = store_->MutatePlansQuietly({{a, succeed}, {b, succeed}, {a, note}, {c, refuse}, {d, succeed}});
  ASSERT_EQ(done.size(), 5u);
  EXPECT_TRUE(done[0].ok()) << done[0].status();
  EXPECT_TRUE(done[1].ok()) << done[1].status();
  EXPECT_TRUE(done[2].ok()) << done[2].status();
  EXPECT_EQ(done[3].status().code(), absl::StatusCode::kFailedPrecondition) << done[3].status();
  EXPECT_TRUE(done[4].ok()) << done[4].status();
  // a's first change and d's in one statement; b's guess was outdated, a's
  // second change waited for its first.
  EXPECT_EQ(store_->quiet_writes_batched(), batched + 6);
  absl::StatusOr<v1::Plan> stored = store_->GetPlan(a);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->state(), v1::PLAN_STATE_SUCCEEDED);
  EXPECT_EQ(stored->failure().message(), "noted after");
  EXPECT_EQ(stored->deployment_id(), "dep-a");
  stored = store_->GetPlan(b);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->state(), v1::PLAN_STATE_SUCCEEDED);
  EXPECT_EQ(stored->hold_message(), "changed meanwhile");
  EXPECT_EQ(stored->deployment_id(), "dep-b");
  stored = store_->GetPlan(c);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->state(), v1::PLAN_STATE_EXECUTING);
  stored = store_->GetPlan(d);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->state(), v1::PLAN_STATE_SUCCEEDED);
  EXPECT_EQ(stored->deployment_id(), "dep-d");
}

// Issue #23: quiet changes made at once (the deployer's acknowledgements of
// the plans it takes, several at a time) share one statement. a's row is
// held FOR UPDATE meanwhile, so a's change waits in its statement and the
// others queue behind it: they are written together once it is released.
TEST_F(PlannerTest, QuietChangesMadeAtOnceShareOneStatement) {
  ASSERT_NO_FATAL_FAILURE(PlanFourApps());
  const std::vector<std::string> ids = {Plans("a")[0].id(), Plans("b")[0].id(), Plans("c")[0].id(),
                                        Plans("d")[0].id()};
  std::unique_ptr<postgres::ConnectionPool> holder_pool = db_.Pool(1);
  ferry::testing::HeldLock held(*holder_pool, "SELECT 1 FROM planner.plans WHERE id = '" + ids[0] + "' FOR UPDATE");
  const int64_t batched = store_->quiet_writes_batched();
  std::vector<absl::StatusOr<v1::Plan>> done(ids.size(), absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < ids.size(); ++i) {
    threads.emplace_back([&, i] {
      done[i] = store_->MutatePlanQuietly(ids[i], [i](v1::Plan& p) -> absl::StatusOr<std::vector<v1::Event>> {
        p.set_state(v1::PLAN_STATE_EXECUTING);
        p.set_deployment_id(absl::StrCat("dep-", i));
        return std::vector<v1::Event>();
      });
    });
    if (i == 0) absl::SleepFor(absl::Milliseconds(100));  // a first: it waits for the row
  }
  absl::SleepFor(absl::Milliseconds(300));
  held.Release();
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(store_->quiet_writes_batched(), batched + 3) << "b, c and d in one statement";
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_TRUE(done[i].ok()) << i << ": " << done[i].status();
    absl::StatusOr<v1::Plan> stored = store_->GetPlan(ids[i]);
    ASSERT_TRUE(stored.ok()) << stored.status();
    EXPECT_EQ(stored->state(), v1::PLAN_STATE_EXECUTING) << i;
    EXPECT_EQ(stored->deployment_id(), absl::StrCat("dep-", i)) << i;
  }
}

// More than one batch of unused entries goes in one pass.
TEST_F(PlannerTest, RenderCacheEvictionEmptiesMoreThanOneBatch) {
  ASSERT_TRUE(pool_->RunInTransaction([&](pqxx::work& txn) {
                     txn.exec("INSERT INTO planner.render_cache (key, manifests, use_time) "
                              "SELECT 'k' || g, ''::bytea, now() - interval '30 days' FROM generate_series(1, 2500) g");
                     return absl::OkStatus();
                   })
                  .ok());
  ASSERT_TRUE(store_->PutCachedRender("live", {}).ok());
  absl::StatusOr<int64_t> gone = store_->EvictCachedRenders(absl::Hours(24), 0);
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_EQ(*gone, 2500);
  EXPECT_TRUE(store_->GetCachedRender("live")->has_value());
}

// Issue #23: the reads a revision makes instead of every application, on
// PostgreSQL (the applications_repo_ref index): one repository and ref's
// applications and their input paths, and applications by id.
TEST_F(PlannerTest, TheStoreReadsOneRepositorysApplicationsAndApplicationsById) {
  CreateEnv("local", v1::APPROVAL_POLICY_AUTO);
  CreateApp(AppSpec("a", "apps/a", {"local"}));
  CreateApp(AppSpec("b", "apps/b", {"local"}));
  v1::Application other = AppSpec("c", "apps/c", {"local"});
  other.set_repository_id("other");
  CreateApp(other);
  v1::Application dev = AppSpec("d", "apps/d", {"local"});
  dev.set_ref("refs/heads/dev");
  CreateApp(dev);
  ASSERT_TRUE(store_->SetInputPaths("b", {"base", "shared/x.yaml"}).ok());
  auto ids = [](const std::vector<v1::Application>& apps) {
    std::vector<std::string> out;
    for (const auto& a : apps) out.push_back(a.id());
    return out;
  };
  const std::string ref = store_->GetApplication("a")->ref();  // as the catalog stored it
  absl::StatusOr<std::vector<v1::Application>> here = store_->ListApplicationsOf("repo", ref);
  ASSERT_TRUE(here.ok()) << here.status();
  EXPECT_EQ(ids(*here), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(ids(*store_->ListApplicationsOf("other", ref)), std::vector<std::string>{"c"});
  EXPECT_EQ(ids(*store_->ListApplicationsOf("repo", "refs/heads/dev")), std::vector<std::string>{"d"});
  EXPECT_TRUE(store_->ListApplicationsOf("nowhere", ref)->empty());
  absl::StatusOr<std::map<std::string, std::vector<std::string>>> inputs = store_->ListInputPathsOf("repo", ref);
  ASSERT_TRUE(inputs.ok()) << inputs.status();
  EXPECT_EQ(inputs->size(), 2u);
  EXPECT_EQ((*inputs)["b"], (std::vector<std::string>{"base", "shared/x.yaml"}));
  EXPECT_TRUE((*inputs)["a"].empty());
  EXPECT_EQ(ids(*store_->GetApplications({"c", "a", "gone"})), (std::vector<std::string>{"a", "c"}));
  EXPECT_TRUE(store_->GetApplications({})->empty());
}

// Issue #23: a page of ListApplications reads its own rows on the primary key
// (ListApplicationsAfter), in the order ORDER BY id gives, whatever its ids.
TEST_F(PlannerTest, TheStoreReadsApplicationsAPageAfterAnId) {
  CreateEnv("local", v1::APPROVAL_POLICY_AUTO);
  for (const char* id : {"b", "a-2", "a", "c", "a-10"}) CreateApp(AppSpec(id, std::string("apps/") + id, {"local"}));
  auto ids = [](const absl::StatusOr<std::vector<v1::Application>>& apps) {
    std::vector<std::string> out;
    EXPECT_TRUE(apps.ok()) << apps.status();
    if (apps.ok())
      for (const auto& a : *apps) out.push_back(a.id());
    return out;
  };
  absl::StatusOr<std::vector<v1::Application>> all = store_->ListApplications();
  ASSERT_TRUE(all.ok()) << all.status();
  std::vector<std::string> want = ids(all);
  ASSERT_EQ(want.size(), 5u);
  // Paged two at a time, every application once, in the full listing's order.
  std::vector<std::string> paged;
  std::string after;
  for (int i = 0; i < 10; ++i) {
    std::vector<std::string> page = ids(store_->ListApplicationsAfter(after, 2));
    EXPECT_LE(page.size(), 2u);
    paged.insert(paged.end(), page.begin(), page.end());
    if (page.size() < 2) break;
    after = page.back();
  }
  EXPECT_EQ(paged, want);
  EXPECT_EQ(ids(store_->ListApplicationsAfter(want.back(), 2)), std::vector<std::string>{});
  EXPECT_EQ(ids(store_->ListApplicationsAfter("", 100)), want);
}

// Issue #23: the index a revision reads its candidates through
// (ListApplicationsTouchedBy, migration 009): every application with a root
// (path or input path) at, above or below a changed path, and no other of
// the repository's; rows written before the migration (path NULL) are
// candidates until their path is filled in.
TEST_F(PlannerTest, TheStoreFindsTheApplicationsAChangedPathTouchesThroughTheIndex) {
  CreateEnv("local", v1::APPROVAL_POLICY_AUTO);
  for (int i = 0; i < 50; ++i) CreateApp(AppSpec(absl::StrCat("app", i), absl::StrCat("apps/a", i), {"local"}));
  CreateApp(AppSpec("deep", "apps/deep/nested/app", {"local"}));
  CreateApp(AppSpec("whole", "", {"local"}));  // the repository root
  CreateApp(AppSpec("k", "overlays/k", {"local"}, {}, v1::RENDER_METHOD_KUSTOMIZE));
  ASSERT_TRUE(store_->SetInputPaths("k", {"base", "shared/values.yaml"}).ok());
  v1::Application other = AppSpec("other", "apps/a1", {"local"});
  other.set_repository_id("other");
  CreateApp(other);
  v1::Application dev = AppSpec("dev", "apps/a1", {"local"});
  dev.set_ref("refs/heads/dev");
  CreateApp(dev);
  const std::string ref = store_->GetApplication("app1")->ref();
  auto touched = [&](std::vector<std::string> changed) {
    absl::StatusOr<std::vector<CatalogStore::ApplicationRoots>> got =
        store_->ListApplicationsTouchedBy("repo", ref, changed);
    EXPECT_TRUE(got.ok()) << got.status();
    std::vector<std::string> ids;
    if (got.ok())
      for (const auto& c : *got) ids.push_back(c.app.id());
    return ids;
  };
  using Ids = std::vector<std::string>;
  // A file in one application's folder: that one (and the root application).
  EXPECT_EQ(touched({"apps/a1/cm.yaml"}), (Ids{"app1", "whole"}));
  // Not app10 or app11: "apps/a1" is not a folder above "apps/a10/...".
  EXPECT_EQ(touched({"apps/a10/cm.yaml"}), (Ids{"app10", "whole"}));
  // A folder above an application's root (a root below the changed path).
  EXPECT_EQ(touched({"apps/deep"}), (Ids{"deep", "whole"}));
  EXPECT_EQ(touched({"apps/deep/nested/app/x/y.yaml"}), (Ids{"deep", "whole"}));
  // Input paths: a file under a Kustomize base, a Helm values file itself.
  EXPECT_EQ(touched({"base/cm.yaml"}), (Ids{"k", "whole"}));
  EXPECT_EQ(touched({"shared/values.yaml"}), (Ids{"k", "whole"}));
  EXPECT_EQ(touched({"shared/other.yaml"}), (Ids{"whole"}));
  EXPECT_EQ(touched({"docs/readme.md", "apps/a2/x", "apps/a3/y"}), (Ids{"app2", "app3", "whole"}));
  // Input paths replaced: the old base no longer touches k.
  ASSERT_TRUE(store_->SetInputPaths("k", {"base2"}).ok());
  EXPECT_EQ(touched({"base/cm.yaml"}), (Ids{"whole"}));
  EXPECT_EQ(touched({"base2/cm.yaml"}), (Ids{"k", "whole"}));
  // An application moved to another folder is found at its new path only.
  v1::Application moved = *store_->GetApplication("app5");
  moved.set_path("moved/five");
  ASSERT_TRUE(planner_->UpdateApplication(moved, {}, User("alice")).ok());
  EXPECT_EQ(touched({"apps/a5/cm.yaml"}), (Ids{"whole"}));
  EXPECT_EQ(touched({"moved/five/cm.yaml"}), (Ids{"app5", "whole"}));
  // A row written before migration 009 has no path: a candidate for any
  // change, until this read fills its path in.
  ASSERT_TRUE(pool_->RunInTransaction([&](pqxx::work& txn) {
                     txn.exec("UPDATE planner.applications SET path = NULL WHERE id = 'app7'");
                     return absl::OkStatus();
                   })
                  .ok());
  EXPECT_EQ(touched({"docs/readme.md"}), (Ids{"app7", "whole"}));
  EXPECT_EQ(touched({"docs/readme.md"}), (Ids{"whole"}));
  EXPECT_EQ(touched({"apps/a7/cm.yaml"}), (Ids{"app7", "whole"}));
}

TEST_F(PlannerTest, OnlyApplicationsWhoseInputsChangedAreReplanned) {
  CreateEnv("local", v1::APPROVAL_POLICY_AUTO);
  CreateApp(AppSpec("a", "apps/a", {"local"}));
  CreateApp(AppSpec("b", "apps/b", {"local"}));
  CreateApp(AppSpec("k", "overlays/k", {"local"}, {}, v1::RENDER_METHOD_KUSTOMIZE));
  FakeTree tree = {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}},
                   {"apps/b/cm.yaml", {ConfigMap("b", "1"), ""}},
                   {"base/kustomization.yaml", {"resources: [cm.yaml]\n", ""}},
                   {"base/cm.yaml", {ConfigMap("k", "1"), ""}},
                   {"overlays/k/kustomization.yaml", {"resources: [../../base]\n", ""}},
                   {"docs/readme.md", {"hi", ""}}};
  auto first = planner_->HandleRevision(repo_.Commit("repo", kRef, tree));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*first, 3);

  tree["apps/b/cm.yaml"].data = ConfigMap("b", "2");
  auto second = planner_->HandleRevision(repo_.Commit("repo", kRef, tree));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*second, 1);
  EXPECT_EQ(Plans("b").size(), 2u);
  EXPECT_EQ(Plans("a").size(), 1u);

  tree["docs/readme.md"].data = "changed";
  EXPECT_EQ(*planner_->HandleRevision(repo_.Commit("repo", kRef, tree)), 0);

  // The Kustomize base lives outside the app's folder; changing it re-plans k.
  tree["base/cm.yaml"].data = ConfigMap("k", "2");
  EXPECT_EQ(*planner_->HandleRevision(repo_.Commit("repo", kRef, tree)), 1);
  EXPECT_EQ(Plans("k").size(), 2u);
  // The second k plan superseded the first, which nobody had claimed.
  EXPECT_EQ(Plans("k")[1].state(), v1::PLAN_STATE_SUPERSEDED);
  EXPECT_EQ(Plans("k")[1].superseded_by_plan_id(), Plans("k")[0].id());
  EXPECT_GE(CountAudit(v1::AUDIT_ACTION_PLAN_SUPERSEDED), 2);
}

TEST_F(PlannerTest, NothingDiffersMeansNoPlanAndRenderCacheIsUsed) {
  CreateEnv("local", v1::APPROVAL_POLICY_AUTO);
  CreateApp(AppSpec("a", "apps/a", {"local"}));
  FakeTree tree = {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}}};
  v1::Revision r1 = repo_.Commit("repo", kRef, tree);
  ASSERT_EQ(*planner_->HandleRevision(r1), 1);
  Deploy(Plans("a")[0]);
  size_t read_before = repo_.bytes_read();
  v1::RefreshApplicationRequest refresh;
  refresh.set_application_id("a");
  auto plans = planner_->RefreshApplication(refresh);
  ASSERT_TRUE(plans.ok()) << plans.status();
  EXPECT_TRUE(plans->empty()) << "live matches desired: no plan";
  EXPECT_EQ(repo_.bytes_read(), read_before) << "same inputs: served from the render cache";
  refresh.set_hard(true);
  EXPECT_TRUE(planner_->RefreshApplication(refresh)->empty());
  EXPECT_GT(repo_.bytes_read(), read_before) << "hard refresh re-renders";
}

// Issue #23: each application a new revision planned was listed (for its
// render cache key) and then read again for the render: two ReadContent
// streams each. A small folder now comes with its listing; one over
// kListingDataBytes is listed, then read; a refresh, which mostly finds its
// render cached, lists without the data.
TEST_F(PlannerTest, ANewRevisionReadsASmallApplicationOnceAndABigOneListedThenRead) {
  CreateEnv("local", v1::APPROVAL_POLICY_AUTO);
  CreateApp(AppSpec("a", "apps/a", {"local"}));
  CreateApp(AppSpec("b", "apps/b", {"local"}));
  const std::string big(static_cast<size_t>(kListingDataBytes), 'x');
  FakeTree tree = {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}}, {"apps/b/cm.yaml", {ConfigMap("b", big), ""}}};
  ASSERT_EQ(*planner_->HandleRevision(repo_.Commit("repo", kRef, tree)), 2);

  tree["apps/a/cm.yaml"].data = ConfigMap("a", "2");
  size_t reads = repo_.reads();
  ASSERT_EQ(*planner_->HandleRevision(repo_.Commit("repo", kRef, tree)), 1);
  EXPECT_EQ(repo_.reads() - reads, 1u) << "a small application: its listing brought its files";
  ASSERT_EQ(Plans("a").size(), 2u);
  EXPECT_NE(Plans("a")[0].manifests(0).json().find("\"2\""), std::string::npos) << Plans("a")[0].manifests(0).json();

  tree["apps/b/cm.yaml"].data = ConfigMap("b", big + "y");
  reads = repo_.reads();
  ASSERT_EQ(*planner_->HandleRevision(repo_.Commit("repo", kRef, tree)), 1);
  EXPECT_EQ(repo_.reads() - reads, 2u) << "over kListingDataBytes: listed, then read";
  ASSERT_EQ(Plans("b").size(), 2u);
  EXPECT_NE(Plans("b")[0].manifests(0).json().find(big + "y"), std::string::npos);

  const size_t bytes = repo_.bytes_read();
  v1::RefreshApplicationRequest refresh;
  refresh.set_application_id("a");
  ASSERT_TRUE(planner_->RefreshApplication(refresh).ok());
  EXPECT_EQ(repo_.bytes_read(), bytes) << "a refresh finds its render cached: listed without the data";
}

TEST_F(PlannerTest, WavesAndDependsOnOrderTheRelease) {
  CreateEnv("local", v1::APPROVAL_POLICY_AUTO);
  CreateApp(AppSpec("db", "apps/db", {"local"}));
  CreateApp(AppSpec("web", "apps/web", {"local"}, {"db"}));
  FakeTree tree = {{"apps/db/all.yaml", {ConfigMap("schema", "1", 1) + "---\n" + ConfigMap("server", "1", -1) + "---\n" +
                                             ConfigMap("config", "1"),
                                         ""}},
                   {"apps/web/cm.yaml", {ConfigMap("web", "1"), ""}}};
  ASSERT_EQ(*planner_->HandleRevision(repo_.Commit("repo", kRef, tree)), 2);
  v1::Plan db = Plans("db")[0];
  v1::Plan web = Plans("web")[0];
  ASSERT_EQ(db.actions_size(), 3);
  EXPECT_EQ(db.actions(0).object().name(), "server");
  EXPECT_EQ(db.actions(1).object().name(), "config");
  EXPECT_EQ(db.actions(2).object().name(), "schema");
  EXPECT_EQ(db.actions(2).wave(), 1);
  ASSERT_EQ(web.after_plan_ids_size(), 1);
  EXPECT_EQ(web.after_plan_ids(0), db.id());
  EXPECT_EQ(web.state(), v1::PLAN_STATE_APPROVED);
  EXPECT_EQ(web.hold_reason(), v1::HOLD_REASON_DEPENDENCY);
  EXPECT_EQ(ReleasedIds(), std::vector<std::string>{db.id()});
  Deploy(db);
  // Reporting db's success re-evaluated the hold: web is released after it.
  EXPECT_EQ(ReleasedIds(), std::vector<std::string>{web.id()});
  EXPECT_EQ(planner_->GetPlan(web.id(), v1::PLAN_VIEW_BASIC)->hold_reason(), v1::HOLD_REASON_UNSPECIFIED);
}

TEST_F(PlannerTest, IndependentApplicationsArePlannedInParallelAndDependantsAfterTheirDependencies) {
  CreateEnv("local", v1::APPROVAL_POLICY_AUTO);
  FakeTree tree;
  std::vector<std::string> leaves;
  for (int i = 0; i < 12; ++i) {
    std::string id = absl::StrCat("leaf", i);
    leaves.push_back(id);
    CreateApp(AppSpec(id, "apps/" + id, {"local"}));
    tree["apps/" + id + "/cm.yaml"] = {ConfigMap(id, "1"), ""};
  }
  CreateApp(AppSpec("top", "apps/top", {"local"}, leaves));
  tree["apps/top/cm.yaml"] = {ConfigMap("top", "1"), ""};
  live_.SetDelay(absl::Milliseconds(30));
  ASSERT_EQ(*planner_->HandleRevision(repo_.Commit("repo", kRef, tree)), 13);
  EXPECT_GE(live_.peak_concurrent(), 2) << "independent applications overlap";
  EXPECT_LE(live_.peak_concurrent(), 8) << "bounded by the planner's concurrency";
  v1::Plan top = Plans("top")[0];
  ASSERT_EQ(top.after_plan_ids_size(), 12) << "every dependency was planned before its dependant";
  for (const std::string& leaf : leaves) {
    EXPECT_NE(std::find(top.after_plan_ids().begin(), top.after_plan_ids().end(), Plans(leaf)[0].id()),
              top.after_plan_ids().end())
        << leaf;
  }
}

TEST_F(PlannerTest, AReaderFollowingTheReleaseCursorNeverSkipsAPlanReleasedConcurrently) {
  CreateEnv("local", v1::APPROVAL_POLICY_AUTO);
  FakeTree tree;
  for (int i = 0; i < 60; ++i) {
    std::string id = absl::StrCat("app", i);
    CreateApp(AppSpec(id, "apps/" + id, {"local"}));
    tree["apps/" + id + "/cm.yaml"] = {ConfigMap(id, "1"), ""};
  }
  live_.SetDelay(absl::Milliseconds(1));
  // The deployer's side: follow the cursor while plans are being released.
  std::atomic<bool> planning{true};
  std::set<std::string> seen;
  std::string cursor;
  std::thread reader([&] {
    for (bool last = false; !last;) {
      last = !planning.load();
      auto page = planner_->ReleasedAfter(cursor, 1000);
      ASSERT_TRUE(page.ok()) << page.status();
      for (const ReleasedPlan& rp : *page) {
        seen.insert(rp.plan.id());
        cursor = std::to_string(rp.release_seq);
      }
    }
  });
  absl::StatusOr<int> made = planner_->HandleRevision(repo_.Commit("repo", kRef, tree));
  planning = false;
  reader.join();
  ASSERT_TRUE(made.ok()) << made.status();
  ASSERT_EQ(*made, 60);
  std::vector<std::string> missed;
  for (const v1::Plan& p : Plans()) {
    if (!seen.count(p.id())) missed.push_back(p.id());
  }
  EXPECT_TRUE(missed.empty()) << "skipped by the cursor: " << absl::StrJoin(missed, ", ");
}

// Plans are released in a shared transaction after their own commits
// (issue #23); a planner stopped between the two leaves an approved plan
// unreleased, which the next hold pass releases, once, with no new events.
TEST_F(PlannerTest, AnApprovedPlanLeftUnreleasedByAStoppedPlannerIsReleasedByTheHoldPass) {
  CreateEnv("local", v1::APPROVAL_POLICY_AUTO);
  CreateApp(AppSpec("a", "apps/a", {"local"}));
  FakeTree tree = {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}}};
  store_->set_release_after_insert_for_test(false);
  ASSERT_EQ(*planner_->HandleRevision(repo_.Commit("repo", kRef, tree)), 1);
  v1::Plan p = Plans("a")[0];
  ASSERT_EQ(p.state(), v1::PLAN_STATE_APPROVED);
  EXPECT_TRUE(ReleasedIds().empty()) << "the stopped planner released nothing";
  const size_t events = AuditActions().size();

  store_->set_release_after_insert_for_test(true);  // the planner started again
  MakePlanner();
  // Just written: most likely in its insert's release right now; left to it.
  absl::StatusOr<int> young = planner_->hold_evaluator()->ReevaluateHolds();
  ASSERT_TRUE(young.ok()) << young.status();
  EXPECT_EQ(*young, 0);
  EXPECT_TRUE(ReleasedIds().empty());
  clock_.Set(clock_.Now() + kUnreleasedGrace);
  absl::StatusOr<int> released = planner_->hold_evaluator()->ReevaluateHolds();
  ASSERT_TRUE(released.ok()) << released.status();
  EXPECT_EQ(*released, 1);
  EXPECT_EQ(ReleasedIds(), std::vector<std::string>{p.id()});
  EXPECT_EQ(AuditActions().size(), events) << "releasing it is no new decision";
  ASSERT_TRUE(planner_->hold_evaluator()->ReevaluateHolds().ok());
  EXPECT_EQ(ReleasedIds(), std::vector<std::string>{p.id()}) << "released once";
}

TEST_F(PlannerTest, PlansInsertedConcurrentlyAreEachReleasedOnceInSharedReleases) {
  CreateEnv("local", v1::APPROVAL_POLICY_AUTO);
  FakeTree tree;
  for (int i = 0; i < 40; ++i) {
    std::string id = absl::StrCat("app", i);
    CreateApp(AppSpec(id, "apps/" + id, {"local"}));
    tree["apps/" + id + "/cm.yaml"] = {ConfigMap(id, "1"), ""};
  }
  ASSERT_EQ(*planner_->HandleRevision(repo_.Commit("repo", kRef, tree)), 40);
  auto released = planner_->ReleasedAfter("", 1000);
  ASSERT_TRUE(released.ok()) << released.status();
  std::set<std::string> ids;
  std::set<int64_t> positions;
  for (const ReleasedPlan& rp : *released) {
    ids.insert(rp.plan.id());
    positions.insert(rp.release_seq);
  }
  EXPECT_EQ(released->size(), 40u);
  EXPECT_EQ(ids.size(), 40u) << "every plan released";
  EXPECT_EQ(positions.size(), 40u) << "each at a position of its own";
  // Nothing is left for the hold pass to release.
  absl::StatusOr<int> again = planner_->hold_evaluator()->ReevaluateHolds();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, 0);
}

// Returns once some session waits for an advisory lock (an insert blocked
// on the application lock `txn` holds).
void WaitForAnAdvisoryLockWaiter(pqxx::work& txn) {
  for (int i = 0; i < 5000; ++i) {
    if (txn.exec1("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")[0].as<int>() > 0) return;
    usleep(1000);
  }
  ADD_FAILURE() << "no insert waited for the lock";
}

// Issue #23: PutCachedRender calls that come while another runs share one
// statement (one transaction, not one per application planned); each entry
// is stored, two of one key go in separate batches in the order they came
// (the first kept), and an entry over kMaxBatchedPlanBytes is written alone.
TEST_F(PlannerTest, ConcurrentRenderCachePutsShareOneStatement) {
  auto manifests = [](const std::string& path, size_t pad = 0) {
    v1::Manifest m;
    m.set_source_path(path);
    m.set_json(std::string(pad, 'x'));
    return std::vector<v1::Manifest>{m};
  };
  auto read_path = [&](const std::string& key) -> std::string {
    absl::StatusOr<std::optional<std::vector<v1::Manifest>>> got = store_->GetCachedRender(key);
    if (!got.ok() || !got->has_value() || (*got)->empty()) return "(none)";
    return (*got)->at(0).source_path();
  };
  const int64_t batched_before = store_->cache_puts_batched();
  // A first put waits on a row of its key inserted, uncommitted, here; the
  // others queue behind it.
  pqxx::connection holder(db_.url());
  pqxx::work held(holder);
  held.exec("INSERT INTO planner.render_cache (key, manifests) VALUES ('blocker', '')");
  absl::Status blocked = absl::UnknownError("not answered");
  std::thread first([&] { blocked = store_->PutCachedRender("blocker", manifests("blocker")); });
  bool waiting = false;
  for (int i = 0; i < 5000 && !waiting; ++i) {
    waiting = held.exec1("SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted")[0]
                  .as<int>() > 0;
    if (!waiting) usleep(1000);
  }
  ASSERT_TRUE(waiting) << "the first put did not wait for the row";
  const std::vector<std::pair<std::string, std::string>> asked = {
      {"a", "a"}, {"b", "b"}, {"c", "c"}, {"dup", "dup-first"}, {"dup", "dup-second"}};
  std::vector<absl::Status> answers(asked.size(), absl::UnknownError("not answered"));
  std::vector<std::thread> callers;
  for (size_t i = 0; i < asked.size(); ++i) {
    callers.emplace_back([&, i] { answers[i] = store_->PutCachedRender(asked[i].first, manifests(asked[i].second)); });
    for (int w = 0; w < 5000 && store_->cache_puts_queued() < i + 1; ++w) usleep(1000);
    ASSERT_EQ(store_->cache_puts_queued(), i + 1);
  }
  // Too big for a batch: written at once, alone, while the others wait.
  ASSERT_TRUE(store_->PutCachedRender("big", manifests("big", PostgresPlannerStore::kMaxBatchedPlanBytes)).ok());
  EXPECT_EQ(store_->cache_puts_queued(), asked.size());
  held.abort();
  first.join();
  for (auto& t : callers) t.join();

  ASSERT_TRUE(blocked.ok()) << blocked;
  for (size_t i = 0; i < asked.size(); ++i) EXPECT_TRUE(answers[i].ok()) << asked[i].second << ": " << answers[i];
  // a, b, c and the first "dup" in one statement; the second "dup" after.
  EXPECT_EQ(store_->cache_puts_batched() - batched_before, 4);
  EXPECT_EQ(read_path("blocker"), "blocker");
  EXPECT_EQ(read_path("a"), "a");
  EXPECT_EQ(read_path("b"), "b");
  EXPECT_EQ(read_path("c"), "c");
  EXPECT_EQ(read_path("dup"), "dup-first");
  EXPECT_EQ(read_path("big"), "big");
}

// Issue #23: render cache reads that come while one runs (the plans of a
// commit are made at once) share one statement, each answered with its own
// entry or none, and an entry unused for an hour is marked used by it.
TEST_F(PlannerTest, ConcurrentRenderCacheGetsShareOneStatement) {
  auto manifests = [](const std::string& path) {
    v1::Manifest m;
    m.set_source_path(path);
    return std::vector<v1::Manifest>{m};
  };
  for (const char* key : {"blocker", "a", "b", "old"}) ASSERT_TRUE(store_->PutCachedRender(key, manifests(key)).ok());
  ASSERT_TRUE(pool_->RunInTransaction([&](pqxx::work& txn) {
                     txn.exec("UPDATE planner.render_cache SET use_time = now() - interval '2 hours'"
                              " WHERE key IN ('blocker', 'old')");
                     return absl::OkStatus();
                   })
                  .ok());
  const int64_t batched_before = store_->cache_gets_batched();
  // A first read waits to mark 'blocker' used, its row locked here; the
  // others queue behind it.
  pqxx::connection holder(db_.url());
  pqxx::work held(holder);
  held.exec("SELECT 1 FROM planner.render_cache WHERE key = 'blocker' FOR UPDATE");
  absl::StatusOr<std::optional<std::vector<v1::Manifest>>> blocked = absl::UnknownError("not answered");
  std::thread first([&] { blocked = store_->GetCachedRender("blocker"); });
  bool waiting = false;
  for (int i = 0; i < 5000 && !waiting; ++i) {
    waiting = held.exec1("SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted")[0]
                  .as<int>() > 0;
    if (!waiting) usleep(1000);
  }
  ASSERT_TRUE(waiting) << "the first read did not wait for the row";
  const std::vector<std::string> asked = {"a", "missing", "old", "b"};
  std::vector<absl::StatusOr<std::optional<std::vector<v1::Manifest>>>> answers(asked.size(),
                                                                              absl::UnknownError("not answered"));
  std::vector<std::thread> callers;
  for (size_t i = 0; i < asked.size(); ++i) {
    callers.emplace_back([&, i] { answers[i] = store_->GetCachedRender(asked[i]); });
    for (int w = 0; w < 5000 && store_->cache_gets_queued() < i + 1; ++w) usleep(1000);
    ASSERT_EQ(store_->cache_gets_queued(), i + 1);
  }
  held.abort();
  first.join();
  for (auto& t : callers) t.join();
  EXPECT_EQ(store_->cache_gets_batched() - batched_before, 4);
  auto path = [](const absl::StatusOr<std::optional<std::vector<v1::Manifest>>>& got) -> std::string {
    if (!got.ok()) return got.status().ToString();
    if (!got->has_value()) return "(none)";
    return (*got)->empty() ? "(empty)" : (*got)->at(0).source_path();
  };
  EXPECT_EQ(path(blocked), "blocker");
  EXPECT_EQ(path(answers[0]), "a");
  EXPECT_EQ(path(answers[1]), "(none)");
  EXPECT_EQ(path(answers[2]), "old");
  EXPECT_EQ(path(answers[3]), "b");
  int64_t stale = -1;
  ASSERT_TRUE(pool_->RunInTransaction([&](pqxx::work& txn) {
                     stale = txn.exec1("SELECT count(*) FROM planner.render_cache"
                                       " WHERE use_time < now() - interval '1 hour'")[0]
                                 .as<int64_t>();
                     return absl::OkStatus();
                   })
                  .ok());
  EXPECT_EQ(stale, 0) << "'old' was marked used by the shared read";
}

// Issue #23: InsertPlan calls that come while another insert runs share one
// transaction (a handful of statements, not seven each), and each gets the
// answer it would get alone: inserted with its own id, ALREADY_EXISTS for a
// commit planned already, the open plan it supersedes superseded with its
// event, its approvals recorded, its events enqueued in order, its row
// version kept for a later quiet change.
TEST_F(PlannerTest, ConcurrentPlanInsertsShareOneTransactionAndEachGetsItsOwnAnswer) {
  CreateEnv("local", v1::APPROVAL_POLICY_AUTO);
  for (const char* app : {"blocker", "new", "superseding", "duplicate", "approved", "second"})
    CreateApp(AppSpec(app, std::string("apps/") + app, {"local"}));
  auto plan_of = [](const std::string& app, const std::string& sha, v1::PlanState state) {
    v1::Plan p;
    p.set_application_id(app);
    p.set_environment_id("local");
    p.mutable_target_revision()->set_sha(sha);
    p.set_state(state);
    p.set_trigger(v1::PLAN_TRIGGER_NEW_REVISION);
    return p;
  };
  auto created = [](const v1::Plan& p) {
    v1::Event e;
    e.set_action(v1::AUDIT_ACTION_PLAN_CREATED);
    e.set_idempotency_key("created/" + p.id());
    e.mutable_subject()->set_plan_id(p.id());
    return std::vector<v1::Event>{e};
  };
  PlanStore::SupersededEventFn superseded = [](const v1::Plan& old, const v1::Plan& by) {
    v1::Event e;
    e.set_action(v1::AUDIT_ACTION_PLAN_SUPERSEDED);
    e.set_idempotency_key("superseded/" + old.id());
    e.mutable_subject()->set_plan_id(old.id());
    e.set_message("by " + by.id());
    return e;
  };
  auto insert = [&](const v1::Plan& p, bool supersede) {
    return store_->InsertPlan(p, "def", /*dedupe=*/true, supersede, created, superseded);
  };
  // What is there before: an open plan to supersede, a commit planned.
  absl::StatusOr<v1::Plan> open = insert(plan_of("superseding", "s1", v1::PLAN_STATE_PENDING), false);
  ASSERT_TRUE(open.ok()) << open.status();
  ASSERT_TRUE(insert(plan_of("duplicate", "d1", v1::PLAN_STATE_PENDING), false).ok());
  const int64_t batched_before = store_->inserts_batched();

  // A first insert waits on its application's lock, held here; the others
  // queue behind it.
  pqxx::connection holder(db_.url());
  pqxx::work held(holder);
  held.exec("SELECT pg_advisory_xact_lock(hashtext('planner.plan/blocker/local'))");
  absl::StatusOr<v1::Plan> blocked;
  std::thread first([&] { blocked = insert(plan_of("blocker", "b1", v1::PLAN_STATE_PENDING), false); });
  WaitForAnAdvisoryLockWaiter(held);
  v1::Plan approved = plan_of("approved", "a1", v1::PLAN_STATE_PENDING);
  v1::PlanDecision* approval = approved.add_approvals();
  approval->mutable_actor()->set_id("alice");
  std::vector<std::pair<v1::Plan, bool>> asked = {
      {plan_of("new", "n1", v1::PLAN_STATE_PENDING), false},
      {plan_of("superseding", "s2", v1::PLAN_STATE_PENDING), true},
      {plan_of("duplicate", "d1", v1::PLAN_STATE_PENDING), false},
      {approved, false},
      {plan_of("second", "x1", v1::PLAN_STATE_PENDING), false},
      {plan_of("second", "x2", v1::PLAN_STATE_PENDING), true},  // after x1: of the same key
  };
  std::vector<absl::StatusOr<v1::Plan>> answers(asked.size(), absl::UnknownError("not answered"));
  std::vector<std::thread> callers;
  for (size_t i = 0; i < asked.size(); ++i) {
    callers.emplace_back([&, i] { answers[i] = insert(asked[i].first, asked[i].second); });
    for (int w = 0; w < 5000 && store_->inserts_queued() < i + 1; ++w) usleep(1000);
    ASSERT_EQ(store_->inserts_queued(), i + 1);
  }
  held.commit();
  first.join();
  for (auto& t : callers) t.join();

  ASSERT_TRUE(blocked.ok()) << blocked.status();
  for (size_t i : {0, 1, 3, 4, 5}) ASSERT_TRUE(answers[i].ok()) << i << ": " << answers[i].status();
  EXPECT_TRUE(absl::IsAlreadyExists(answers[2].status())) << answers[2].status();
  EXPECT_EQ(store_->inserts_batched() - batched_before, 4) << "new, superseding, approved and x1 in one batch";
  std::set<std::string> ids;
  for (size_t i : {0, 1, 3, 4, 5}) {
    absl::StatusOr<v1::Plan> stored = store_->GetPlan(answers[i]->id());
    ASSERT_TRUE(stored.ok()) << stored.status();
    EXPECT_EQ(stored->application_id(), asked[i].first.application_id());
    EXPECT_EQ(stored->target_revision().sha(), asked[i].first.target_revision().sha());
    ids.insert(answers[i]->id());
  }
  EXPECT_EQ(ids.size(), 5u) << "an id each";
  absl::StatusOr<v1::Plan> old = store_->GetPlan(open->id());
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->state(), v1::PLAN_STATE_SUPERSEDED);
  EXPECT_EQ(old->superseded_by_plan_id(), answers[1]->id());
  absl::StatusOr<v1::Plan> x1 = store_->GetPlan(answers[4]->id());
  ASSERT_TRUE(x1.ok()) << x1.status();
  EXPECT_EQ(x1->state(), v1::PLAN_STATE_SUPERSEDED) << "x2 came after x1 and superseded it";
  EXPECT_EQ(x1->superseded_by_plan_id(), answers[5]->id());
  pqxx::connection check(db_.url());
  pqxx::nontransaction q(check);
  EXPECT_EQ(q.exec1("SELECT count(*) FROM planner.plan_approvals WHERE plan_id = " + q.quote(answers[3]->id()))[0]
                .as<int>(),
            1);
  // Every event, a superseded plan's before its successor's.
  auto events = outbox_->FetchUnsent(100);
  ASSERT_TRUE(events.ok()) << events.status();
  std::vector<std::string> keys;
  for (const auto& e : *events) {
    const std::string& key = e.event.idempotency_key();
    if (absl::StartsWith(key, "created/") || absl::StartsWith(key, "superseded/")) keys.push_back(key);
  }
  auto at = [&](const std::string& key) { return std::find(keys.begin(), keys.end(), key) - keys.begin(); };
  for (size_t i : {0, 1, 3, 4, 5}) EXPECT_LT(at("created/" + answers[i]->id()), keys.size()) << i;
  EXPECT_LT(at("created/" + blocked->id()), keys.size());
  EXPECT_LT(at("superseded/" + open->id()), at("created/" + answers[1]->id()));
  EXPECT_LT(at("superseded/" + answers[4]->id()), at("created/" + answers[5]->id()));
  // The two plans there before, the blocker, the five inserted, the two superseded.
  EXPECT_EQ(keys.size(), 10u) << absl::StrJoin(keys, ", ");
  // Each row version was kept: a quiet change of a batched plan reads nothing.
  const int64_t unread = store_->quiet_writes_unread();
  ASSERT_TRUE(store_->MutatePlanQuietly(answers[0]->id(), [](v1::Plan& p) -> absl::StatusOr<std::vector<v1::Event>> {
                      p.set_hold_message("noted");
                      return std::vector<v1::Event>();
                    }).ok());
  EXPECT_EQ(store_->quiet_writes_unread(), unread + 1);
}

// A batch whose transaction fails inserts each plan alone: the plan at
// fault fails with its own error, the others are inserted.
TEST_F(PlannerTest, APlanInsertBatchThatFailsInsertsEachAloneAndFailsOnlyThePlanAtFault) {
  CreateEnv("local", v1::APPROVAL_POLICY_AUTO);
  for (const char* app : {"blocker", "good", "bad"}) CreateApp(AppSpec(app, std::string("apps/") + app, {"local"}));
  auto plan_of = [](const std::string& app, const std::string& sha) {
    v1::Plan p;
    p.set_application_id(app);
    p.set_environment_id("local");
    p.mutable_target_revision()->set_sha(sha);
    p.set_state(v1::PLAN_STATE_PENDING);
    return p;
  };
  auto insert = [&](const v1::Plan& p) { return store_->InsertPlan(p, "def", true, true, nullptr, nullptr); };
  absl::StatusOr<v1::Plan> open = insert(plan_of("bad", "b0"));
  ASSERT_TRUE(open.ok()) << open.status();
  pqxx::connection holder(db_.url());
  {
    pqxx::nontransaction corrupt(holder);
    corrupt.exec("UPDATE planner.plans SET body = '\\xff00ff'::bytea WHERE id = " + corrupt.quote(open->id()));
  }
  const int64_t batched_before = store_->inserts_batched();
  pqxx::work held(holder);
  held.exec("SELECT pg_advisory_xact_lock(hashtext('planner.plan/blocker/local'))");
  absl::StatusOr<v1::Plan> blocked;
  std::thread first([&] { blocked = insert(plan_of("blocker", "k1")); });
  WaitForAnAdvisoryLockWaiter(held);
  absl::StatusOr<v1::Plan> good, bad;
  std::thread good_caller([&] { good = insert(plan_of("good", "g1")); });
  for (int w = 0; w < 5000 && store_->inserts_queued() < 1; ++w) usleep(1000);
  std::thread bad_caller([&] { bad = insert(plan_of("bad", "b1")); });
  for (int w = 0; w < 5000 && store_->inserts_queued() < 2; ++w) usleep(1000);
  ASSERT_EQ(store_->inserts_queued(), 2u);
  held.commit();
  first.join();
  good_caller.join();
  bad_caller.join();
  ASSERT_TRUE(blocked.ok()) << blocked.status();
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("plan"), std::string::npos) << bad.status();
  EXPECT_EQ(store_->inserts_batched(), batched_before) << "nothing committed by the failed batch";
  EXPECT_TRUE(store_->GetPlan(good->id()).ok());
  pqxx::nontransaction q(holder);
  EXPECT_EQ(q.exec1("SELECT count(*) FROM planner.plans WHERE application_id = 'bad'")[0].as<int>(), 1)
      << "the bad application's new plan was not inserted";
}

TEST_F(PlannerTest, ManualApprovalHoldsUntilApprovedOrRejected) {
  CreateEnv("prod", v1::APPROVAL_POLICY_MANUAL);
  CreateApp(AppSpec("a", "apps/a", {"prod"}));
  FakeTree tree = {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}}};
  ASSERT_EQ(*planner_->HandleRevision(repo_.Commit("repo", kRef, tree)), 1);
  v1::Plan p = Plans("a")[0];
  EXPECT_EQ(p.state(), v1::PLAN_STATE_PENDING);
  EXPECT_EQ(p.hold_reason(), v1::HOLD_REASON_AWAITING_APPROVAL);
  EXPECT_TRUE(ReleasedIds().empty());
  EXPECT_TRUE(absl::IsInvalidArgument(planner_->ApprovePlan(p.id(), v1::Actor(), "").status()));
  auto approved = planner_->ApprovePlan(p.id(), User("bob"), "looks good");
  ASSERT_TRUE(approved.ok()) << approved.status();
  EXPECT_EQ(approved->decision().actor().id(), "bob");
  EXPECT_EQ(approved->decision().comment(), "looks good");
  EXPECT_EQ(ReleasedIds(), std::vector<std::string>{p.id()});
  EXPECT_TRUE(absl::IsFailedPrecondition(planner_->ApprovePlan(p.id(), User("bob"), "").status()));

  tree["apps/a/cm.yaml"].data = ConfigMap("a", "2");
  ASSERT_EQ(*planner_->HandleRevision(repo_.Commit("repo", kRef, tree)), 1);
  v1::Plan q = Plans("a")[0];
  auto rejected = planner_->RejectPlan(q.id(), User("carol"), "not today");
  ASSERT_TRUE(rejected.ok());
  EXPECT_EQ(rejected->state(), v1::PLAN_STATE_REJECTED);
  EXPECT_TRUE(absl::IsFailedPrecondition(planner_->ApprovePlan(q.id(), User("bob"), "").status()));
  EXPECT_EQ(CountAudit(v1::AUDIT_ACTION_PLAN_REJECTED), 1);
  EXPECT_EQ(CountAudit(v1::AUDIT_ACTION_PLAN_APPROVED), 1);
}

TEST_F(PlannerTest, ClosedSyncWindowHoldsAnApprovedPlanUntilItOpens) {
  v1::SyncWindow w;
  w.set_kind(v1::SYNC_WINDOW_KIND_ALLOW);
  w.set_schedule("0 9 * * *");
  w.mutable_duration()->set_seconds(3600);
  CreateEnv("local", v1::APPROVAL_POLICY_AUTO, "", {w});
  CreateApp(AppSpec("a", "apps/a", {"local"}));
  clock_.Set(absl::FromCivil(absl::CivilMinute(2026, 11, 26, 18, 0), absl::UTCTimeZone()));
  ASSERT_EQ(*planner_->HandleRevision(repo_.Commit("repo", kRef, {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}}})), 1);
  v1::Plan p = Plans("a")[0];
  EXPECT_EQ(p.state(), v1::PLAN_STATE_APPROVED);
  EXPECT_EQ(p.hold_reason(), v1::HOLD_REASON_SYNC_WINDOW_CLOSED);
  EXPECT_NE(p.hold_message().find("opens at 2026-11-27T09:00:00Z"), std::string::npos) << p.hold_message();
  EXPECT_TRUE(ReleasedIds().empty());
  v1::AcknowledgePlanRequest ack;
  ack.set_plan_id(p.id());
  ack.set_deployment_id("d1");
  EXPECT_FALSE(planner_->AcknowledgePlan(ack)->proceed());
  EXPECT_EQ(*planner_->ReevaluateHolds(), 0);
  clock_.Set(absl::FromCivil(absl::CivilMinute(2026, 11, 27, 9, 10), absl::UTCTimeZone()));
  EXPECT_EQ(*planner_->ReevaluateHolds(), 1);
  EXPECT_EQ(ReleasedIds(), std::vector<std::string>{p.id()});
}

TEST_F(PlannerTest, PromotionGateHoldsUntilDeployedHealthyUpstream) {
  CreateEnv("local", v1::APPROVAL_POLICY_AUTO);
  CreateEnv("prod", v1::APPROVAL_POLICY_MANUAL, "local");
  CreateApp(AppSpec("a", "apps/a", {"local", "prod"}));
  FakeTree tree = {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}}};
  v1::Revision good = repo_.Commit("repo", kRef, tree);
  ASSERT_EQ(*planner_->HandleRevision(good), 1) << "prod waits for local";
  v1::Plan local = Plans("a", "local")[0];
  EXPECT_TRUE(Plans("a", "prod").empty());
  v1::PlanRevisionRequest explicit_req;
  explicit_req.set_application_id("a");
  explicit_req.set_environment_id("prod");
  explicit_req.mutable_revision()->set_sha(good.sha());
  auto gated = planner_->PlanRevision(explicit_req);
  ASSERT_TRUE(absl::IsFailedPrecondition(gated.status()));
  EXPECT_NE(gated.status().message().find("environment \"local\""), std::string::npos) << gated.status();
  v1::RefreshApplicationRequest refresh;
  refresh.set_application_id("a");
  refresh.set_environment_id("prod");
  EXPECT_TRUE(planner_->RefreshApplication(refresh)->empty());

  Deploy(local);  // healthy in local: the revision is promoted to prod
  std::vector<v1::Plan> prod = Plans("a", "prod");
  ASSERT_EQ(prod.size(), 1u);
  EXPECT_EQ(prod[0].target_revision().sha(), good.sha());
  EXPECT_EQ(prod[0].state(), v1::PLAN_STATE_PENDING);
  EXPECT_EQ(prod[0].hold_reason(), v1::HOLD_REASON_AWAITING_APPROVAL);

  // A later revision that fails in local is never planned for prod, and
  // the promotable plan stays.
  tree["apps/a/cm.yaml"].data = ConfigMap("a", "2");
  ASSERT_EQ(*planner_->HandleRevision(repo_.Commit("repo", kRef, tree)), 1);
  v1::Plan bad = Plans("a", "local")[0];
  v1::AcknowledgePlanRequest ack;
  ack.set_plan_id(bad.id());
  ack.set_deployment_id("dep-bad");
  ASSERT_TRUE(planner_->AcknowledgePlan(ack)->proceed());
  v1::ReportPlanResultRequest rep;
  rep.set_plan_id(bad.id());
  rep.set_deployment_id("dep-bad");
  rep.set_state(v1::PLAN_STATE_ROLLED_BACK);
  ASSERT_TRUE(planner_->ReportPlanResult(rep).ok());
  ASSERT_EQ(Plans("a", "prod").size(), 1u);
  EXPECT_EQ(Plans("a", "prod")[0].state(), v1::PLAN_STATE_PENDING);
  ASSERT_TRUE(planner_->ApprovePlan(prod[0].id(), User("bob"), "promote").ok());
  EXPECT_EQ(ReleasedIds(), std::vector<std::string>{prod[0].id()});
}

TEST_F(PlannerTest, PinnedApplicationWaitsForAPersonEvenWithAutoApproval) {
  CreateEnv("local", v1::APPROVAL_POLICY_AUTO);
  CreateApp(AppSpec("a", "apps/a", {"local"}));
  v1::LiveState pinned;
  pinned.mutable_pin()->set_pinned(true);
  pinned.mutable_pin()->set_sha(std::string(40, 'a'));
  pinned.mutable_pin()->set_reason("rolled back");
  live_.Set("a", "local", pinned);
  ASSERT_EQ(*planner_->HandleRevision(repo_.Commit("repo", kRef, {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}}})), 1);
  v1::Plan p = Plans("a")[0];
  EXPECT_EQ(p.state(), v1::PLAN_STATE_PENDING);
  EXPECT_EQ(p.hold_reason(), v1::HOLD_REASON_PINNED);
  EXPECT_NE(p.hold_message().find("pinned at aaaaaaaaaaaa (rolled back)"), std::string::npos) << p.hold_message();
  EXPECT_EQ(*planner_->ReevaluateHolds(), 0);
  EXPECT_EQ(planner_->GetPlan(p.id(), v1::PLAN_VIEW_BASIC)->hold_reason(), v1::HOLD_REASON_PINNED);
  EXPECT_TRUE(ReleasedIds().empty());
  ASSERT_TRUE(planner_->ApprovePlan(p.id(), User("bob"), "roll forward").ok());
  EXPECT_EQ(ReleasedIds(), std::vector<std::string>{p.id()});
}

TEST_F(PlannerTest, ConfigFileContentFromIsComparedByTheFilesContent) {
  CreateEnv("local", v1::APPROVAL_POLICY_AUTO);
  CreateApp(AppSpec("a", "apps/a", {"local"}));
  FakeTree tree = {{"apps/a/conf.yaml",
                    {"apiVersion: ferry.dev/v1\nkind: ConfigFile\nmetadata:\n  name: conf\n  annotations: "
                     "{ferry.dev/sync-wave: \"-1\"}\nspec:\n  path: a.conf\n  contentFrom: {file: a.conf}\n",
                     ""}},
                   {"apps/a/a.conf", {"level=info\n", ""}}};
  ASSERT_EQ(*planner_->HandleRevision(repo_.Commit("repo", kRef, tree)), 1);
  v1::Plan first = Plans("a")[0];
  // Deployed the way the host target reports it: applied with the content
  // resolved, live with path, content and mode only.
  json applied = json::parse(first.manifests(0).json());
  applied["spec"].erase("contentFrom");
  applied["spec"]["content"] = "level=info\n";
  json live_json = {{"apiVersion", "ferry.dev/v1"},
                    {"kind", "ConfigFile"},
                    {"metadata", {{"name", "conf"}}},
                    {"spec", {{"path", "a.conf"}, {"content", "level=info\n"}, {"mode", "0644"}}}};
  v1::LiveState live;
  v1::LiveObject* o = live.add_objects();
  *o->mutable_object() = first.manifests(0).object();
  o->set_live_json(live_json.dump());
  o->set_applied_json(applied.dump());
  live_.Set("a", "local", live);
  v1::RefreshApplicationRequest refresh;
  refresh.set_application_id("a");
  EXPECT_TRUE(planner_->RefreshApplication(refresh)->empty()) << "nothing differs";

  tree["apps/a/a.conf"].data = "level=debug\n";
  ASSERT_EQ(*planner_->HandleRevision(repo_.Commit("repo", kRef, tree)), 1);
  v1::Plan second = Plans("a")[0];
  ASSERT_EQ(second.actions_size(), 1);
  EXPECT_EQ(second.actions(0).action(), v1::OBJECT_ACTION_UPDATE);
  EXPECT_NE(second.actions(0).unified_diff().find("+    \"content\": \"level=debug\\n\""), std::string::npos)
      << second.actions(0).unified_diff();
  EXPECT_NE(second.manifests(0).json().find("contentFrom"), std::string::npos) << "the manifest itself is unchanged";
}

TEST_F(PlannerTest, DeletingAnApplicationClosesItsOpenPlans) {
  CreateEnv("local", v1::APPROVAL_POLICY_AUTO);
  CreateEnv("prod", v1::APPROVAL_POLICY_MANUAL);
  CreateApp(AppSpec("a", "apps/a", {"local", "prod"}));
  ASSERT_EQ(*planner_->HandleRevision(repo_.Commit("repo", kRef, {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}}})), 2);
  ASSERT_EQ(ReleasedIds().size(), 1u);
  ASSERT_TRUE(planner_->DeleteApplication("a", User("alice")).ok());
  for (const v1::Plan& p : Plans("a")) {
    EXPECT_EQ(p.state(), v1::PLAN_STATE_REJECTED) << p.environment_id();
    EXPECT_EQ(p.decision().comment(), "application deleted");
    EXPECT_EQ(p.decision().actor().id(), "alice");
  }
  EXPECT_TRUE(ReleasedIds().empty()) << "nothing of a deleted application reaches the deployer";
  EXPECT_EQ(CountAudit(v1::AUDIT_ACTION_PLAN_REJECTED), 2);
}

TEST_F(PlannerTest, PreviewPersistsNothingExecutable) {
  CreateEnv("local", v1::APPROVAL_POLICY_AUTO);
  CreateApp(AppSpec("a", "apps/a", {"local"}));
  repo_.Commit("repo", kRef, {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}}});
  repo_.Commit("repo", "refs/heads/pr-7", {{"apps/a/cm.yaml", {ConfigMap("a", "2"), ""}}});
  int audit_before = static_cast<int>(AuditActions().size());
  v1::PreviewPlanRequest req;
  req.set_application_id("a");
  req.set_environment_id("local");
  req.mutable_revision()->set_ref("pr-7");
  auto preview = planner_->PreviewPlan(req, User("alice"));
  ASSERT_TRUE(preview.ok()) << preview.status();
  EXPECT_TRUE(preview->preview());
  EXPECT_TRUE(preview->id().empty());
  EXPECT_EQ(preview->target_revision().ref(), "refs/heads/pr-7");
  ASSERT_EQ(preview->actions_size(), 1);
  EXPECT_EQ(preview->actions(0).action(), v1::OBJECT_ACTION_CREATE);
  EXPECT_NE(preview->actions(0).unified_diff().find("+    \"value\": \"2\""), std::string::npos);
  EXPECT_TRUE(Plans().empty());
  EXPECT_TRUE(ReleasedIds().empty());
  EXPECT_EQ(static_cast<int>(AuditActions().size()), audit_before);
}

TEST_F(PlannerTest, BadInputsMakeFailedPlansThatNeverReachTheDeployer) {
  CreateEnv("local", v1::APPROVAL_POLICY_AUTO);
  CreateApp(AppSpec("yaml", "apps/yaml", {"local"}));
  CreateApp(AppSpec("escape", "apps/escape", {"local"}));
  v1::Application helm = AppSpec("tmpl", "apps/tmpl", {"local"}, {}, v1::RENDER_METHOD_HELM);
  CreateApp(helm);
  // An application whose stored render method this planner does not know
  // (as if written by a newer version): the renderer itself refuses it.
  v1::Application future = AppSpec("future", "apps/yaml", {"local"});
  future.set_ref(kRef);
  future.set_render_method(static_cast<v1::RenderMethod>(7));
  ConfigChange change;
  change.create_applications.push_back(future);
  ASSERT_TRUE(store_->ApplyConfigChange(change).ok());

  FakeTree tree = {
      {"apps/yaml/bad.yaml", {"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: [\n", ""}},
      {"apps/escape/ok.yaml", {ConfigMap("ok", "1"), ""}},
      {"apps/escape/passwd.yaml", {"", "../../../../etc/passwd"}},
      {"apps/tmpl/Chart.yaml", {"apiVersion: v2\nname: tmpl\nversion: 0.1.0\n", ""}},
      {"apps/tmpl/templates/cm.yaml", {"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ fail \"boom\" }}\n", ""}}};
  ASSERT_EQ(*planner_->HandleRevision(repo_.Commit("repo", kRef, tree)), 4);
  std::map<std::string, v1::Plan> by_app;
  for (auto& p : Plans()) by_app[p.application_id()] = p;
  for (const auto& [app, p] : by_app) {
    EXPECT_EQ(p.state(), v1::PLAN_STATE_FAILED) << app;
    EXPECT_TRUE(p.actions().empty()) << app;
  }
  EXPECT_NE(by_app["yaml"].failure().message().find("malformed YAML"), std::string::npos);
  EXPECT_EQ(by_app["yaml"].failure().path(), "apps/yaml/bad.yaml");
  EXPECT_GT(by_app["yaml"].failure().line(), 0);
  EXPECT_NE(by_app["escape"].failure().message().find("path escapes the repository"), std::string::npos);
  EXPECT_NE(by_app["tmpl"].failure().message().find("boom"), std::string::npos) << by_app["tmpl"].failure().message();
  EXPECT_EQ(by_app["tmpl"].failure().path(), "apps/tmpl/templates/cm.yaml");
  EXPECT_NE(by_app["future"].failure().message().find("unknown render method 7"), std::string::npos);
  EXPECT_EQ(CountAudit(v1::AUDIT_ACTION_RENDER_FAILED), 4);
  EXPECT_TRUE(ReleasedIds().empty());
  v1::AcknowledgePlanRequest ack;
  ack.set_plan_id(by_app["yaml"].id());
  ack.set_deployment_id("d1");
  EXPECT_FALSE(planner_->AcknowledgePlan(ack)->proceed());
  // A revision seen again (replay after a restart) makes no second plan.
  EXPECT_EQ(*planner_->HandleRevision(repo_.Commit("repo", kRef, tree)), 0);
}

TEST_F(PlannerTest, RenderHangingPastItsTimeoutFailsThePlan) {
  std::string bin = ferry::testing::MakeTempDir("planner-fake-helm");
  std::ofstream(bin + "/helm") << "#!/bin/sh\nif [ \"$1\" = version ]; then echo v0-hang; exit 0; fi\nsleep 60\n";
  std::filesystem::permissions(bin + "/helm", std::filesystem::perms::owner_all);
  options_.helm_path = bin + "/helm";
  options_.timeout = absl::Seconds(1);
  MakePlanner();
  CreateEnv("local", v1::APPROVAL_POLICY_AUTO);
  CreateApp(AppSpec("h", "chart", {"local"}, {}, v1::RENDER_METHOD_HELM));
  ASSERT_EQ(*planner_->HandleRevision(
                repo_.Commit("repo", kRef, {{"chart/Chart.yaml", {"apiVersion: v2\nname: h\nversion: 0.1.0\n", ""}}})),
            1);
  v1::Plan p = Plans("h")[0];
  EXPECT_EQ(p.state(), v1::PLAN_STATE_FAILED);
  EXPECT_NE(p.failure().message().find("did not finish within 1s"), std::string::npos) << p.failure().message();
  EXPECT_TRUE(ReleasedIds().empty());
}

TEST_F(PlannerTest, HandOffIsDurableAndAPlanGetsAtMostOneDeployment) {
  CreateEnv("local", v1::APPROVAL_POLICY_AUTO);
  CreateApp(AppSpec("a", "apps/a", {"local"}));
  FakeTree tree = {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}}};
  ASSERT_EQ(*planner_->HandleRevision(repo_.Commit("repo", kRef, tree)), 1);
  auto released = planner_->ReleasedAfter("", 10);
  ASSERT_EQ(released->size(), 1u);
  std::string cursor = std::to_string((*released)[0].release_seq);
  v1::Plan p = (*released)[0].plan;
  EXPECT_FALSE(p.manifests().empty()) << "streamed in FULL view";
  EXPECT_TRUE(ReleasedIds(cursor).empty());

  v1::AcknowledgePlanRequest ack;
  ack.set_plan_id(p.id());
  ack.set_deployment_id("d1");
  EXPECT_TRUE(planner_->AcknowledgePlan(ack)->proceed());
  EXPECT_TRUE(planner_->AcknowledgePlan(ack)->proceed()) << "idempotent for the same deployment";
  ack.set_deployment_id("d2");
  auto second = planner_->AcknowledgePlan(ack);
  EXPECT_FALSE(second->proceed());
  EXPECT_NE(second->reason().find("d1"), std::string::npos);

  // "Restart": a new planner over the same database still offers the
  // unfinished plan to a deployer starting from scratch; the ack guards it.
  MakePlanner();
  EXPECT_EQ(ReleasedIds(), std::vector<std::string>{p.id()});
  v1::ReportPlanResultRequest rep;
  rep.set_plan_id(p.id());
  rep.set_deployment_id("d1");
  rep.set_state(v1::PLAN_STATE_SUCCEEDED);
  ASSERT_TRUE(planner_->ReportPlanResult(rep).ok());
  ASSERT_TRUE(planner_->ReportPlanResult(rep).ok()) << "repeated report is idempotent";
  rep.set_state(v1::PLAN_STATE_FAILED);
  EXPECT_TRUE(absl::IsFailedPrecondition(planner_->ReportPlanResult(rep).status()));
  EXPECT_TRUE(ReleasedIds().empty());

  // A plan superseded before it is claimed is refused.
  tree["apps/a/cm.yaml"].data = ConfigMap("a", "2");
  ASSERT_EQ(*planner_->HandleRevision(repo_.Commit("repo", kRef, tree)), 1);
  v1::Plan old = Plans("a")[0];
  tree["apps/a/cm.yaml"].data = ConfigMap("a", "3");
  ASSERT_EQ(*planner_->HandleRevision(repo_.Commit("repo", kRef, tree)), 1);
  ack.set_plan_id(old.id());
  ack.set_deployment_id("d3");
  auto refused = planner_->AcknowledgePlan(ack);
  EXPECT_FALSE(refused->proceed());
  EXPECT_EQ(refused->state(), v1::PLAN_STATE_SUPERSEDED);
  EXPECT_EQ(ReleasedIds(), std::vector<std::string>{Plans("a")[0].id()});
}

TEST_F(PlannerTest, PlanRevisionPlansAnOlderCommitForRollback) {
  CreateEnv("local", v1::APPROVAL_POLICY_MANUAL);
  CreateApp(AppSpec("a", "apps/a", {"local"}));
  v1::Revision r1 = repo_.Commit("repo", kRef, {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}}});
  ASSERT_EQ(*planner_->HandleRevision(r1), 1);
  ASSERT_TRUE(planner_->ApprovePlan(Plans("a")[0].id(), User("bob"), "").ok());
  Deploy(Plans("a")[0]);
  v1::Revision r2 = repo_.Commit("repo", kRef, {{"apps/a/cm.yaml", {ConfigMap("a", "2"), ""}}});
  ASSERT_EQ(*planner_->HandleRevision(r2), 1);
  ASSERT_TRUE(planner_->ApprovePlan(Plans("a")[0].id(), User("bob"), "").ok());
  Deploy(Plans("a")[0]);

  v1::PlanRevisionRequest req;
  req.set_application_id("a");
  req.set_environment_id("local");
  req.mutable_revision()->set_sha(r1.sha());
  req.set_trigger(v1::PLAN_TRIGGER_ROLLBACK);
  req.set_rollback_to_deployment_id("dep-1");
  *req.mutable_actor() = User("deployer");
  req.set_approve(true);
  auto rb = planner_->PlanRevision(req);
  ASSERT_TRUE(rb.ok()) << rb.status();
  ASSERT_FALSE(rb->up_to_date());
  EXPECT_EQ(rb->plan().target_revision().sha(), r1.sha());
  EXPECT_EQ(rb->plan().source_revision().sha(), r2.sha());
  EXPECT_EQ(rb->plan().trigger(), v1::PLAN_TRIGGER_ROLLBACK);
  EXPECT_EQ(rb->plan().state(), v1::PLAN_STATE_APPROVED) << "approved as the actor despite manual policy";
  EXPECT_EQ(rb->plan().decision().actor().id(), "deployer");
  EXPECT_EQ(rb->plan().rollback_to_deployment_id(), "dep-1");
  req.mutable_revision()->set_sha(r2.sha());
  req.set_trigger(v1::PLAN_TRIGGER_EXPLICIT_REVISION);
  EXPECT_TRUE(planner_->PlanRevision(req)->up_to_date());
}

// The rollback gate reads PostgresPlannerStore::HasSucceeded: a plan of the
// application and environment at that commit that reached SUCCEEDED.
TEST_F(PlannerTest, RollbackOnlyTargetsARevisionThatSucceededInThatEnvironment) {
  CreateEnv("local", v1::APPROVAL_POLICY_MANUAL);
  CreateEnv("prod", v1::APPROVAL_POLICY_MANUAL);
  CreateApp(AppSpec("a", "apps/a", {"local", "prod"}));
  v1::Revision r1 = repo_.Commit("repo", kRef, {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}}});
  ASSERT_EQ(*planner_->HandleRevision(r1), 2);
  ASSERT_TRUE(planner_->ApprovePlan(Plans("a", "local")[0].id(), User("bob"), "").ok());
  Deploy(Plans("a", "local")[0]);
  v1::Revision r2 = repo_.Commit("repo", kRef, {{"apps/a/cm.yaml", {ConfigMap("a", "2"), ""}}});
  ASSERT_EQ(*planner_->HandleRevision(r2), 2);
  ASSERT_TRUE(planner_->ApprovePlan(Plans("a", "local")[0].id(), User("bob"), "").ok());
  Deploy(Plans("a", "local")[0]);
  v1::Revision r3 = repo_.Commit("repo", kRef, {{"apps/a/cm.yaml", {ConfigMap("a", "3"), ""}}});
  ASSERT_EQ(*planner_->HandleRevision(r3), 2);  // pending in both, never deployed

  EXPECT_TRUE(*store_->HasSucceeded("a", "local", r1.sha()));
  EXPECT_TRUE(*store_->HasSucceeded("a", "local", r2.sha()));
  EXPECT_FALSE(*store_->HasSucceeded("a", "local", r3.sha())) << "planned, not deployed";
  EXPECT_FALSE(*store_->HasSucceeded("a", "prod", r1.sha())) << "deployed in local only";
  EXPECT_FALSE(*store_->HasSucceeded("b", "local", r1.sha()));

  auto rollback = [&](const std::string& env, const std::string& sha) {
    v1::PlanRevisionRequest req;
    req.set_application_id("a");
    req.set_environment_id(env);
    req.mutable_revision()->set_sha(sha);
    req.set_trigger(v1::PLAN_TRIGGER_ROLLBACK);
    *req.mutable_actor() = User("deployer");
    req.set_approve(true);
    return planner_->PlanRevision(req);
  };
  const size_t plans = Plans().size();
  auto never = rollback("local", r3.sha());
  EXPECT_TRUE(absl::IsFailedPrecondition(never.status())) << never.status();
  EXPECT_NE(never.status().message().find("application \"a\" in environment \"local\" to revision " + r3.sha()),
            std::string::npos)
      << never.status();
  auto elsewhere = rollback("prod", r1.sha());
  EXPECT_TRUE(absl::IsFailedPrecondition(elsewhere.status())) << elsewhere.status();
  EXPECT_EQ(Plans().size(), plans);
  EXPECT_EQ(CountAudit(v1::AUDIT_ACTION_REVISION_REFUSED), 2);

  auto back = rollback("local", r1.sha());
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_TRUE(back->has_plan());
  EXPECT_EQ(back->plan().target_revision().sha(), r1.sha());
  EXPECT_EQ(back->plan().state(), v1::PLAN_STATE_APPROVED);
}

TEST_F(PlannerTest, AConfigurationChangeThatPostgresqlAbortsWithAConflictIsRetriedByThePool) {
  // The first insert into planner.environments fails with a serialization
  // failure (40001), as a concurrent transaction would make it; a sequence
  // counts attempts, since it is not rolled back.
  ASSERT_TRUE(pool_
                  ->WithConnection([](pqxx::connection& c) {
                    pqxx::work t(c);
                    t.exec("CREATE SEQUENCE public.env_insert_attempts");
                    t.exec(
                        "CREATE FUNCTION public.conflict_once() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                        "IF nextval('public.env_insert_attempts') = 1 THEN "
                        "RAISE EXCEPTION 'conflict' USING ERRCODE = 'serialization_failure'; END IF; "
                        "RETURN NEW; END $$");
                    t.exec(
                        "CREATE TRIGGER conflict_once BEFORE INSERT ON planner.environments "
                        "FOR EACH ROW EXECUTE FUNCTION public.conflict_once()");
                    t.commit();
                    return absl::OkStatus();
                  })
                  .ok());
  v1::Environment env;
  env.set_id("local");
  env.mutable_target()->set_kind(v1::TARGET_KIND_HOST);
  env.mutable_target()->mutable_host()->set_root_dir("/tmp/ferry-local");
  ConfigChange change;
  change.create_environments.push_back(env);
  absl::Status applied = store_->ApplyConfigChange(change);
  EXPECT_TRUE(applied.ok()) << applied;
  EXPECT_TRUE(store_->GetEnvironment("local").ok());
}

TEST_F(PlannerTest, ReleaseOnOneReplicaWakesStreamsOfAnother) {
  CreateEnv("local", v1::APPROVAL_POLICY_AUTO);
  CreateApp(AppSpec("a", "apps/a", {"local"}));
  concurrency::ChangeSignal other;  // another replica's signal, woken only through PostgreSQL
  std::unique_ptr<postgres::NotificationListener> listener =
      postgres::NotificationListener::ForSignal(pool_.get(), PostgresPlannerStore::kPlansChannel, &other);
  listener->Start();
  for (int i = 0; i < 100 && other.Version() == 0; ++i) absl::SleepFor(absl::Milliseconds(20));
  uint64_t seen = other.Version();
  ASSERT_GT(seen, 0u) << "listener started";
  absl::SleepFor(absl::Milliseconds(300));
  seen = other.Version();
  ASSERT_EQ(*planner_->HandleRevision(repo_.Commit("repo", kRef, {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}}})), 1);
  absl::Time start = absl::Now();
  EXPECT_NE(other.WaitForChange(seen, absl::Seconds(5)), seen);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  listener->Stop();
}

// Two planner replicas (issue #18) both follow WatchRevisions and handle
// every revision, at the same moment: one plan per (application,
// environment, commit, definitions) all the same, released once.
TEST_F(PlannerTest, TwoReplicasHandlingOneRevisionAtOnceMakeOnePlan) {
  CreateEnv("local", v1::APPROVAL_POLICY_AUTO);
  CreateApp(AppSpec("a", "apps/a", {"local"}));
  CreateApp(AppSpec("b", "apps/b", {"local"}));
  Renderer other_renderer(&repo_, options_);
  PlannerMetrics other_metrics(&registry_);
  Planner other(store_.get(), &repo_, &live_, &other_renderer, &clock_, &notifier_, &other_metrics,
                /*plan_concurrency=*/8, ParseLimits(), SyncWindowLimits(), &approvals_);
  for (int round = 1; round <= 5; ++round) {
    v1::Revision rev = repo_.Commit("repo", kRef,
                                    {{"apps/a/cm.yaml", {ConfigMap("a", std::to_string(round)), ""}},
                                     {"apps/b/cm.yaml", {ConfigMap("b", std::to_string(round)), ""}}});
    absl::StatusOr<int> here, there;
    std::thread t([&] { there = other.HandleRevision(rev); });
    here = planner_->HandleRevision(rev);
    t.join();
    ASSERT_TRUE(here.ok()) << here.status();
    ASSERT_TRUE(there.ok()) << there.status();
    EXPECT_EQ(*here + *there, 2) << "round " << round << ": one plan per application";
  }
  EXPECT_EQ(Plans("a").size(), 5u);
  EXPECT_EQ(Plans("b").size(), 5u);
}

TEST_F(PlannerTest, RevisionConsumerResumesFromItsPersistedCursor) {
  CreateEnv("local", v1::APPROVAL_POLICY_AUTO);
  CreateApp(AppSpec("a", "apps/a", {"local"}));
  repo_.Commit("repo", kRef, {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}}});
  auto wait_for_plans = [&](size_t n) {
    for (int i = 0; i < 200 && Plans("a").size() < n; ++i) absl::SleepFor(absl::Milliseconds(25));
    return Plans("a").size();
  };
  {
    RevisionConsumer consumer(&repo_, store_.get(), planner_->revision_planner());
    consumer.Start();
    EXPECT_EQ(wait_for_plans(1), 1u);
    consumer.Stop();
  }
  EXPECT_EQ(*store_->GetCursor(RevisionConsumer::kCursorName), "1");
  repo_.Commit("repo", kRef, {{"apps/a/cm.yaml", {ConfigMap("a", "2"), ""}}});
  RevisionConsumer consumer(&repo_, store_.get(), planner_->revision_planner());
  consumer.Start();
  EXPECT_EQ(wait_for_plans(2), 2u);
  absl::SleepFor(absl::Milliseconds(200));
  consumer.Stop();
  EXPECT_EQ(Plans("a").size(), 2u) << "the first revision was not planned twice";
}

// The attempt record in PostgreSQL: counted across "restarts" (new store
// objects over the same database), taken back for a transient end, kept for
// a counted one, reset by another item, and forgotten with the audit event
// when the cursor moves past the item, in one transaction.
TEST_F(PlannerTest, AttemptsAtARevisionSurviveRestartsUntilTheCursorMovesPastIt) {
  auto begin = [&](const std::string& key) {
    PostgresPlannerStore restarted(pool_.get(), outbox_.get());
    absl::StatusOr<ItemAttempts> a = restarted.BeginAttempt("consumer", key);
    EXPECT_TRUE(a.ok()) << a.status();
    return a.ok() ? *a : ItemAttempts{-1, ""};
  };
  EXPECT_EQ(begin("7").unfinished, 0);
  EXPECT_EQ(begin("7").unfinished, 1) << "the first attempt never ended (killed)";
  ASSERT_TRUE(store_->EndAttempt("consumer", "7", /*counted=*/false, "UNAVAILABLE: down").ok());
  ItemAttempts third = begin("7");
  EXPECT_EQ(third.unfinished, 1) << "a transient end is taken back";
  EXPECT_EQ(third.last_error, "UNAVAILABLE: down");
  ASSERT_TRUE(store_->EndAttempt("consumer", "7", /*counted=*/true, "INTERNAL: threw").ok());
  EXPECT_EQ(begin("7").unfinished, 2);
  EXPECT_EQ(begin("8").unfinished, 0) << "another item starts over";
  v1::Event e;
  e.set_action(v1::AUDIT_ACTION_RENDER_FAILED);
  e.mutable_actor()->set_id("ferry");
  e.set_message("revision quarantined");
  e.set_idempotency_key("revision-quarantined/repo/8");
  *e.mutable_time() = google::protobuf::util::TimeUtil::GetCurrentTime();
  const int before = CountAudit(v1::AUDIT_ACTION_RENDER_FAILED);
  ASSERT_TRUE(store_->AdvanceCursor("consumer", "8", {e}).ok());
  EXPECT_EQ(*store_->GetCursor("consumer"), "8");
  EXPECT_EQ(CountAudit(v1::AUDIT_ACTION_RENDER_FAILED), before + 1);
  EXPECT_EQ(begin("9").unfinished, 0);
  EXPECT_EQ(begin("9").unfinished, 1);
  ASSERT_TRUE(store_->AdvanceCursor("consumer", "9", {}).ok());
  EXPECT_EQ(begin("9").unfinished, 0) << "moving the cursor forgot the attempts";
}

// A planner killed twice mid-revision (the attempts left in PostgreSQL):
// the restarted consumer quarantines the revision with an audit event and
// plans the newest revision by itself.
TEST_F(PlannerTest, ARestartedPlannerQuarantinesTheRevisionItDiedOnAndPlansTheNewest) {
  CreateEnv("local", v1::APPROVAL_POLICY_AUTO);
  CreateApp(AppSpec("a", "apps/a", {"local"}));
  repo_.Commit("repo", kRef, {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}}});
  v1::Revision newest = repo_.Commit("repo", kRef, {{"apps/a/cm.yaml", {ConfigMap("a", "2"), ""}}});
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(store_->BeginAttempt(RevisionConsumer::kCursorName, "1").ok());
  const int audited = CountAudit(v1::AUDIT_ACTION_RENDER_FAILED);
  RevisionConsumer consumer(&repo_, store_.get(), planner_->revision_planner());
  consumer.Start();
  for (int i = 0; i < 200 && Plans("a").empty(); ++i) absl::SleepFor(absl::Milliseconds(25));
  consumer.Stop();
  std::vector<v1::Plan> plans = Plans("a");
  ASSERT_EQ(plans.size(), 1u);
  EXPECT_EQ(plans[0].target_revision().sha(), newest.sha());
  EXPECT_EQ(*store_->GetCursor(RevisionConsumer::kCursorName), "2");
  EXPECT_EQ(CountAudit(v1::AUDIT_ACTION_RENDER_FAILED), audited + 1) << "the quarantine is audited";
}

// Separation of duties (#16) through PostgreSQL: approvals in
// planner.plan_approvals, one per approver, and commit authors in
// planner.commit_authors.
TEST_F(PlannerTest, ApprovalsAreRecordedOncePerApproverAndTheAuthorIsKeptPerCommit) {
  CreateEnv("prod", v1::APPROVAL_POLICY_MANUAL);
  CreateApp(AppSpec("web", "apps/web", {"prod"}));
  v1::Revision rev = repo_.Commit("repo", kRef, {{"apps/web/cm.yaml", {ConfigMap("web", "1"), ""}}});
  rev.mutable_author()->set_name("Alice Doe");
  rev.mutable_author()->set_email("alice@example.com");
  ASSERT_TRUE(planner_->HandleRevision(rev).ok());
  std::vector<v1::Plan> plans = Plans("web", "prod");
  ASSERT_EQ(plans.size(), 1u);
  const std::string id = plans[0].id();
  EXPECT_EQ(plans[0].state(), v1::PLAN_STATE_PENDING);
  EXPECT_EQ(plans[0].target_author().email(), "alice@example.com");

  approvals_.Set("prod", testing::Rule(2, /*distinct_from_author=*/true));
  auto own = planner_->ApprovePlan(id, User("Alice@Example.com"), "");
  EXPECT_TRUE(absl::IsPermissionDenied(own.status())) << own.status();
  EXPECT_EQ(CountAudit(v1::AUDIT_ACTION_ACCESS_DENIED), 1);

  // One approver, many times at once: recorded once.
  std::atomic<int> recorded{0}, repeated{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&] {
      auto r = planner_->ApprovePlan(id, User("bob"), "lgtm");
      if (r.ok()) ++recorded;
      if (absl::IsAlreadyExists(r.status())) ++repeated;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(recorded.load(), 1);
  EXPECT_EQ(repeated.load(), 5);
  EXPECT_EQ(CountAudit(v1::AUDIT_ACTION_PLAN_APPROVAL_RECORDED), 1);

  MakePlanner();  // a restart keeps what was recorded
  auto pending = planner_->GetPlan(id, v1::PLAN_VIEW_BASIC);
  ASSERT_TRUE(pending.ok()) << pending.status();
  EXPECT_EQ(pending->state(), v1::PLAN_STATE_PENDING);
  ASSERT_EQ(pending->approvals_size(), 1);
  EXPECT_EQ(pending->approvals(0).actor().id(), "bob");
  EXPECT_EQ(pending->approvals(0).comment(), "lgtm");
  EXPECT_TRUE(ReleasedIds().empty());

  auto approved = planner_->ApprovePlan(id, User("carol"), "");
  ASSERT_TRUE(approved.ok()) << approved.status();
  EXPECT_EQ(approved->state(), v1::PLAN_STATE_APPROVED);
  ASSERT_EQ(approved->approvals_size(), 2);
  EXPECT_EQ(approved->approvals(1).actor().id(), "carol");
  EXPECT_EQ(ReleasedIds(), std::vector<std::string>{id});
  EXPECT_EQ(CountAudit(v1::AUDIT_ACTION_PLAN_APPROVED), 1);

  // An explicit plan of the same commit knows its author from the table, and
  // its requester's approval is recorded with it.
  v1::PlanRevisionRequest req;
  req.set_application_id("web");
  req.set_environment_id("prod");
  req.mutable_revision()->set_sha(rev.sha());
  req.set_trigger(v1::PLAN_TRIGGER_EXPLICIT_REVISION);
  req.set_approve(true);
  *req.mutable_actor() = User("alice@example.com");
  EXPECT_TRUE(absl::IsPermissionDenied(planner_->PlanRevision(req).status()));
  *req.mutable_actor() = User("dave");
  auto explicit_plan = planner_->PlanRevision(req);
  ASSERT_TRUE(explicit_plan.ok()) << explicit_plan.status();
  const std::string explicit_id = explicit_plan->plan().id();
  EXPECT_EQ(explicit_plan->plan().state(), v1::PLAN_STATE_PENDING);
  EXPECT_EQ(explicit_plan->plan().target_author().name(), "Alice Doe");
  EXPECT_TRUE(absl::IsAlreadyExists(planner_->ApprovePlan(explicit_id, User("dave"), "").status()))
      << "the requester's approval is on record";
  auto second = planner_->ApprovePlan(explicit_id, User("erin"), "");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->state(), v1::PLAN_STATE_APPROVED);
  ASSERT_EQ(second->approvals_size(), 2);
  EXPECT_EQ(second->approvals(0).actor().id(), "dave");
}

// ANALYZE (autovacuum's, about every 5 s of a commit touching 10,000
// applications) samples only the columns queries filter, join or group on,
// not the serialized bodies, which are read by key (issue #23).
TEST_F(PlannerTest, AnalyzeKeepsNoStatisticsOfTheSerializedBodies) {
  using Columns = std::set<std::string>;
  EXPECT_EQ(ferry::testing::ColumnsWithoutStatistics(*pool_, "planner.plans"), (Columns{"body"}));
  EXPECT_EQ(ferry::testing::ColumnsWithoutStatistics(*pool_, "planner.render_cache"), (Columns{"manifests"}));
  EXPECT_EQ(ferry::testing::ColumnsWithoutStatistics(*pool_, "planner.outbox"),
            (Columns{"event", "idempotency_key", "last_error"}));
}

}  // namespace
// Any positive token is a position (beyond 2^31 too: it used to be an int4
// parameter, and PostgreSQL refused it as INTERNAL); others are not.
TEST_F(PlannerTest, ListPlansTakesAnyPositionAsPageTokenAndRefusesOthers) {
  v1::ListPlansRequest req;
  req.set_page_token("3000000000");
  auto far = planner_->ListPlans(req);
  EXPECT_TRUE(far.ok()) << far.status();
  for (const char* bad : {"-5", "0", "x"}) {
    req.set_page_token(bad);
    EXPECT_EQ(planner_->ListPlans(req).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

// UpdateApplication merges the request into the stored spec; two updates of
// different fields at once must both survive (a write applies only to the
// spec it was merged into, and a stale merge is redone).
TEST_F(PlannerTest, ConcurrentUpdatesOfDifferentFieldsBothSurvive) {
  CreateEnv("dev", v1::APPROVAL_POLICY_AUTO);
  CreateApp(AppSpec("web", "apps/web", {"dev"}));
  // A write merged into a spec that has changed since is refused.
  absl::StatusOr<v1::Application> read = planner_->GetApplication("web");
  ASSERT_TRUE(read.ok()) << read.status();
  v1::Application stale = *read;
  stale.set_ref("stale");
  ConfigChange change;
  change.update_applications.push_back(stale);
  v1::Application older = *read;
  older.set_path("apps/elsewhere");
  change.expected_applications["web"] = older;
  EXPECT_EQ(store_->ApplyConfigChange(change).code(), absl::StatusCode::kAborted);

  constexpr int kRounds = 15;
  std::atomic<int> failures{0};
  std::thread refs([&] {
    for (int i = 1; i <= kRounds; ++i) {
      v1::Application u;
      u.set_id("web");
      u.set_ref(absl::StrCat("release-", i));
      google::protobuf::FieldMask mask;
      mask.add_paths("ref");
      auto r = planner_->UpdateApplication(u, mask, User("alice"));
      if (!r.ok()) {
        ++failures;
        ADD_FAILURE() << r.status();
      }
    }
  });
  std::thread timeouts([&] {
    for (int i = 1; i <= kRounds; ++i) {
      v1::Application u;
      u.set_id("web");
      u.mutable_health_timeout()->set_seconds(i);
      google::protobuf::FieldMask mask;
      mask.add_paths("health_timeout");
      auto r = planner_->UpdateApplication(u, mask, User("bob"));
      if (!r.ok()) {
        ++failures;
        ADD_FAILURE() << r.status();
      }
    }
  });
  refs.join();
  timeouts.join();
  EXPECT_EQ(failures.load(), 0);
  absl::StatusOr<v1::Application> after = planner_->GetApplication("web");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->ref(), absl::StrCat("refs/heads/release-", kRounds));
  EXPECT_EQ(after->health_timeout().seconds(), kRounds);
}

}  // namespace ferry::planner
