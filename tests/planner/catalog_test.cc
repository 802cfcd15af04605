// Catalog against the in-memory store: no PostgreSQL.
#include "services/planner/catalog.h"

#include <gtest/gtest.h>

#include "absl/strings/str_format.h"
#include "tests/planner/planner_fakes.h"

namespace ferry::planner {
namespace {

using testing::AppSpec;
using testing::EnvSpec;
using testing::FakeClock;
using testing::FakePlannerStore;
using testing::InsertPlan;
using testing::User;

class CatalogTest : public ::testing::Test {
 protected:
  FakePlannerStore store_;
  FakeClock clock_{absl::FromUnixSeconds(1'800'000'000)};
  Catalog catalog_{&store_, &store_, &clock_};
};

TEST_F(CatalogTest, CreateValidatesAgainstStoredEnvironmentsAndAuditsTheChange) {
  auto unknown_env = catalog_.CreateApplication(AppSpec("web", "apps/web", {"prod"}), User("alice"));
  EXPECT_TRUE(absl::IsInvalidArgument(unknown_env.status())) << unknown_env.status();
  ASSERT_TRUE(catalog_.CreateEnvironment(EnvSpec("prod", v1::APPROVAL_POLICY_AUTO), User("alice")).ok());
  auto made = catalog_.CreateApplication(AppSpec("web", "apps/web", {"prod"}), User("alice"));
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_EQ(made->create_time().seconds(), 1'800'000'000);
  EXPECT_TRUE(absl::IsAlreadyExists(catalog_.CreateApplication(AppSpec("web", "x", {"prod"}), User("bob")).status()));
  auto cycle = catalog_.CreateApplication(AppSpec("api", "apps/api", {"prod"}, {"api"}), User("alice"));
  EXPECT_TRUE(absl::IsInvalidArgument(cycle.status())) << cycle.status();
  std::vector<v1::Event> events = store_.Events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].action(), v1::AUDIT_ACTION_ENVIRONMENT_CREATED);
  EXPECT_EQ(events[1].action(), v1::AUDIT_ACTION_APPLICATION_CREATED);
  EXPECT_EQ(events[1].actor().id(), "alice");
  EXPECT_EQ(events[1].subject().application_id(), "web");
  EXPECT_NE(events[0].idempotency_key(), events[1].idempotency_key());
}

TEST_F(CatalogTest, RunAsIsCheckedOnCreateAndUpdateAndRootNeedsAllowRoot) {
  v1::Environment env = EnvSpec("prod", v1::APPROVAL_POLICY_AUTO);
  v1::HostRunAs* run_as = env.mutable_target()->mutable_host()->mutable_run_as();
  for (const char* user : {"root", "0"}) {
    run_as->set_user(user);
    auto refused = catalog_.CreateEnvironment(env, User("alice"));
    ASSERT_TRUE(absl::IsInvalidArgument(refused.status())) << user << ": " << refused.status();
    EXPECT_NE(refused.status().message().find("environment.target.host.run_as: names root"), std::string::npos)
        << refused.status();
    EXPECT_NE(refused.status().message().find("--allow-root-workloads"), std::string::npos) << refused.status();
  }
  run_as->set_user("app");
  run_as->set_group("root");
  EXPECT_TRUE(absl::IsInvalidArgument(catalog_.CreateEnvironment(env, User("alice")).status()));
  run_as->set_group("app;rm -rf");
  auto bad_group = catalog_.CreateEnvironment(env, User("alice"));
  EXPECT_NE(bad_group.status().message().find("run_as.group"), std::string::npos) << bad_group.status();
  run_as->clear_group();
  run_as->clear_user();
  auto no_user = catalog_.CreateEnvironment(env, User("alice"));
  EXPECT_NE(no_user.status().message().find("run_as.user"), std::string::npos) << no_user.status();
  run_as->set_user("app");
  ASSERT_TRUE(catalog_.CreateEnvironment(env, User("alice")).ok());
  // An update to root is refused like a create; with allowRoot the planner
  // passes it on (the deployer's --allow-root-workloads decides).
  run_as->set_user("root");
  google::protobuf::FieldMask mask;
  mask.add_paths("target");
  EXPECT_TRUE(absl::IsInvalidArgument(catalog_.UpdateEnvironment(env, mask, User("bob")).status()));
  run_as->set_allow_root(true);
  auto updated = catalog_.UpdateEnvironment(env, mask, User("bob"));
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_TRUE(updated->target().host().run_as().allow_root());
}

TEST_F(CatalogTest, UpdateChangesOnlyTheMaskedFieldsAndRefusesOthers) {
  ASSERT_TRUE(catalog_.CreateEnvironment(EnvSpec("prod", v1::APPROVAL_POLICY_AUTO), User("alice")).ok());
  ASSERT_TRUE(catalog_.CreateApplication(AppSpec("web", "apps/web", {"prod"}), User("alice")).ok());
  v1::Application update;
  update.set_id("web");
  update.set_ref("release");
  update.set_path("elsewhere");
  google::protobuf::FieldMask mask;
  mask.add_paths("ref");
  auto updated = catalog_.UpdateApplication(update, mask, User("bob"));
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->ref(), "refs/heads/release");
  EXPECT_EQ(updated->path(), "apps/web");
  mask.add_paths("id");
  EXPECT_TRUE(absl::IsInvalidArgument(catalog_.UpdateApplication(update, mask, User("bob")).status()));
  EXPECT_EQ(store_.CountEvents(v1::AUDIT_ACTION_APPLICATION_UPDATED), 1);
}

// A CatalogStore whose stored application is changed by "someone else"
// between the catalog's read and its first write.
class InterferingStore final : public CatalogStore {
 public:
  explicit InterferingStore(FakePlannerStore* store) : store_(store) {}
  absl::StatusOr<v1::Environment> GetEnvironment(const std::string& id) override { return store_->GetEnvironment(id); }
  absl::StatusOr<std::vector<v1::Environment>> ListEnvironments() override { return store_->ListEnvironments(); }
  absl::StatusOr<v1::Application> GetApplication(const std::string& id) override { return store_->GetApplication(id); }
  absl::StatusOr<std::vector<v1::Application>> ListApplications() override { return store_->ListApplications(); }
  absl::StatusOr<std::vector<v1::Application>> ListApplicationsAfter(const std::string& after_id, int limit) override {
    return store_->ListApplicationsAfter(after_id, limit);
  }
  absl::StatusOr<std::vector<v1::Application>> ListApplicationsOf(const std::string& repository_id,
                                                                  const std::string& ref) override {
    return store_->ListApplicationsOf(repository_id, ref);
  }
  absl::StatusOr<std::vector<ApplicationRoots>> ListApplicationsTouchedBy(
      const std::string& repository_id, const std::string& ref, const std::vector<std::string>& changed_paths) override {
    return store_->ListApplicationsTouchedBy(repository_id, ref, changed_paths);
  }
  absl::StatusOr<std::vector<v1::Application>> GetApplications(const std::set<std::string>& ids) override {
    return store_->GetApplications(ids);
  }
  absl::StatusOr<std::vector<DeclarationSourceRecord>> ListDeclarationSources() override {
    return store_->ListDeclarationSources();
  }
  absl::Status RecordEvents(const std::vector<v1::Event>& events) override { return store_->RecordEvents(events); }
  absl::Status ApplyConfigChange(const ConfigChange& change) override {
    ++writes;
    if (writes == 1) {
      v1::Application other = *store_->GetApplication("web");
      other.mutable_health_timeout()->set_seconds(42);
      ConfigChange meanwhile;
      meanwhile.update_applications.push_back(other);
      if (absl::Status s = store_->ApplyConfigChange(meanwhile); !s.ok()) return s;
    }
    return store_->ApplyConfigChange(change);
  }
  int writes = 0;

 private:
  FakePlannerStore* store_;
};

TEST_F(CatalogTest, UpdateMergesAgainWhenTheStoredSpecChangedMeanwhile) {
  ASSERT_TRUE(catalog_.CreateEnvironment(EnvSpec("prod", v1::APPROVAL_POLICY_AUTO), User("alice")).ok());
  ASSERT_TRUE(catalog_.CreateApplication(AppSpec("web", "apps/web", {"prod"}), User("alice")).ok());
  InterferingStore interfering(&store_);
  Catalog catalog(&interfering, &store_, &clock_);
  v1::Application update;
  update.set_id("web");
  update.set_ref("release");
  google::protobuf::FieldMask mask;
  mask.add_paths("ref");
  auto updated = catalog.UpdateApplication(update, mask, User("bob"));
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(interfering.writes, 2) << "the first write was refused (ABORTED) and the update merged again";
  v1::Application stored = *store_.GetApplication("web");
  EXPECT_EQ(stored.ref(), "refs/heads/release");
  EXPECT_EQ(stored.health_timeout().seconds(), 42) << "the concurrent change survived";
}

TEST_F(CatalogTest, DeletesAreRefusedWhileSomethingDependsOnThem) {
  ASSERT_TRUE(catalog_.CreateEnvironment(EnvSpec("local", v1::APPROVAL_POLICY_AUTO), User("alice")).ok());
  ASSERT_TRUE(catalog_.CreateEnvironment(EnvSpec("prod", v1::APPROVAL_POLICY_AUTO, "local"), User("alice")).ok());
  ASSERT_TRUE(catalog_.CreateApplication(AppSpec("db", "apps/db", {"local"}), User("alice")).ok());
  ASSERT_TRUE(catalog_.CreateApplication(AppSpec("web", "apps/web", {"local"}, {"db"}), User("alice")).ok());
  auto env_promoted_from = catalog_.DeleteEnvironment("local", User("alice"));
  EXPECT_TRUE(absl::IsFailedPrecondition(env_promoted_from)) << env_promoted_from;
  ASSERT_TRUE(catalog_.DeleteEnvironment("prod", User("alice")).ok());
  auto env_in_use = catalog_.DeleteEnvironment("local", User("alice"));
  EXPECT_TRUE(absl::IsFailedPrecondition(env_in_use)) << env_in_use;
  EXPECT_NE(env_in_use.message().find("still used by application"), std::string::npos) << env_in_use;
  auto dependency = catalog_.DeleteApplication("db", User("alice"));
  EXPECT_TRUE(absl::IsFailedPrecondition(dependency)) << dependency;
  EXPECT_NE(dependency.message().find("depends_on"), std::string::npos) << dependency;
  EXPECT_TRUE(absl::IsNotFound(catalog_.DeleteApplication("nope", User("alice"))));
}

TEST_F(CatalogTest, DeletingAnApplicationRejectsItsOpenPlansOnly) {
  ASSERT_TRUE(catalog_.CreateEnvironment(EnvSpec("prod", v1::APPROVAL_POLICY_AUTO), User("alice")).ok());
  ASSERT_TRUE(catalog_.CreateApplication(AppSpec("web", "apps/web", {"prod"}), User("alice")).ok());
  v1::Plan done = InsertPlan(store_, "web", "prod", v1::PLAN_STATE_SUCCEEDED);
  v1::Plan pending = InsertPlan(store_, "web", "prod", v1::PLAN_STATE_PENDING);
  v1::Plan approved = InsertPlan(store_, "web", "prod", v1::PLAN_STATE_APPROVED);
  ASSERT_TRUE(catalog_.DeleteApplication("web", User("bob")).ok());
  EXPECT_EQ(store_.GetPlan(done.id())->state(), v1::PLAN_STATE_SUCCEEDED);
  for (const v1::Plan& p : {pending, approved}) {
    v1::Plan closed = *store_.GetPlan(p.id());
    EXPECT_EQ(closed.state(), v1::PLAN_STATE_REJECTED);
    EXPECT_EQ(closed.decision().actor().id(), "bob");
    EXPECT_EQ(closed.decision().comment(), "application deleted");
  }
  EXPECT_EQ(store_.CountEvents(v1::AUDIT_ACTION_PLAN_REJECTED), 2);
  EXPECT_EQ(store_.CountEvents(v1::AUDIT_ACTION_APPLICATION_DELETED), 1);
}

TEST_F(CatalogTest, DefinitionsDeclaredInAFerryYamlAreChangedThereOnly) {
  v1::Environment env = EnvSpec("prod", v1::APPROVAL_POLICY_AUTO);
  env.mutable_declared_by()->set_path("ferry.yaml");
  env.mutable_declared_by()->set_repository_id("config");
  env.mutable_declared_by()->set_ref("refs/heads/main");
  ConfigChange change;
  change.create_environments.push_back(env);
  ASSERT_TRUE(store_.ApplyConfigChange(change).ok());
  google::protobuf::FieldMask mask;
  auto update = catalog_.UpdateEnvironment(env, mask, User("alice"));
  EXPECT_TRUE(absl::IsFailedPrecondition(update.status())) << update.status();
  EXPECT_NE(update.status().message().find("ferry.yaml of repository config (refs/heads/main)"), std::string::npos)
      << update.status();
  EXPECT_TRUE(absl::IsFailedPrecondition(catalog_.DeleteEnvironment("prod", User("alice"))));
  v1::Environment api = EnvSpec("api-made", v1::APPROVAL_POLICY_AUTO);
  api.mutable_declared_by()->set_path("ignored");
  auto made = catalog_.CreateEnvironment(api, User("alice"));
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_FALSE(made->has_declared_by()) << "declared_by is output only";
}

TEST_F(CatalogTest, ListsPageByIdAndRefuseABadPageSize) {
  ASSERT_TRUE(catalog_.CreateEnvironment(EnvSpec("prod", v1::APPROVAL_POLICY_AUTO), User("alice")).ok());
  for (const char* id : {"c", "a", "b"})
    ASSERT_TRUE(catalog_.CreateApplication(AppSpec(id, std::string("apps/") + id, {"prod"}), User("alice")).ok());
  v1::ListApplicationsRequest req;
  req.set_page_size(2);
  auto first = catalog_.ListApplications(req);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->applications_size(), 2);
  EXPECT_EQ(first->applications(0).id(), "a");
  EXPECT_EQ(first->next_page_token(), "b");
  req.set_page_token(first->next_page_token());
  auto second = catalog_.ListApplications(req);
  ASSERT_EQ(second->applications_size(), 1);
  EXPECT_EQ(second->applications(0).id(), "c");
  EXPECT_EQ(second->next_page_token(), "");
  req.set_page_size(1001);
  EXPECT_TRUE(absl::IsInvalidArgument(catalog_.ListApplications(req).status()));
}

// Issue #23: the notifier pages through every application each minute. Each
// page read every application (10,000 apps: 11 pages of 10,000 rows a minute,
// a listing quadratic in the applications); a page now reads its own rows.
TEST_F(CatalogTest, PagingThroughEveryApplicationReadsEachOnceNotAllPerPage) {
  ConfigChange change;
  v1::Environment prod = EnvSpec("prod", v1::APPROVAL_POLICY_AUTO);
  v1::Environment dev = EnvSpec("dev", v1::APPROVAL_POLICY_AUTO);
  change.create_environments = {prod, dev};
  constexpr int kApps = 2500;
  for (int i = 0; i < kApps; ++i) {
    v1::Application a = AppSpec(absl::StrFormat("app-%05d", i), absl::StrFormat("apps/%05d", i),
                                {i % 5 == 0 ? "dev" : "prod"});
    if (i % 7 == 0) a.set_repository_id("other");
    change.create_applications.push_back(a);
  }
  ASSERT_TRUE(store_.ApplyConfigChange(change).ok());
  auto page_through = [&](v1::ListApplicationsRequest req) {
    std::vector<std::string> ids;
    for (int pages = 0; pages < 10 * kApps; ++pages) {
      absl::StatusOr<v1::ListApplicationsResponse> page = catalog_.ListApplications(req);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) break;
      EXPECT_LE(page->applications_size(), req.page_size());
      for (const auto& a : page->applications()) ids.push_back(a.id());
      if (page->next_page_token().empty()) break;
      EXPECT_EQ(page->next_page_token(), ids.back());
      req.set_page_token(page->next_page_token());
    }
    return ids;
  };
  const int full_before = store_.FullListings();
  v1::ListApplicationsRequest all;
  all.set_page_size(1000);
  std::vector<std::string> ids = page_through(all);
  ASSERT_EQ(ids.size(), static_cast<size_t>(kApps));
  for (int i = 0; i < kApps; ++i) EXPECT_EQ(ids[i], absl::StrFormat("app-%05d", i));
  // Three pages of 1,000 (each read with one more row to know a next page
  // exists): 2,502 rows, where every page reading all of them read 7,500.
  EXPECT_EQ(store_.FullListings(), full_before);
  EXPECT_LE(store_.PageRowsRead(), kApps + 3);

  // Filtered listings page the same way and return exactly the matches.
  v1::ListApplicationsRequest in_dev;
  in_dev.set_page_size(100);
  in_dev.set_environment_id("dev");
  std::vector<std::string> dev_ids = page_through(in_dev);
  std::vector<std::string> want_dev;
  for (int i = 0; i < kApps; i += 5) want_dev.push_back(absl::StrFormat("app-%05d", i));
  EXPECT_EQ(dev_ids, want_dev);
  v1::ListApplicationsRequest of_other;
  of_other.set_page_size(50);
  of_other.set_repository_id("other");
  of_other.set_environment_id("prod");
  std::vector<std::string> other_ids = page_through(of_other);
  std::vector<std::string> want_other;
  for (int i = 0; i < kApps; i += 7)
    if (i % 5 != 0) want_other.push_back(absl::StrFormat("app-%05d", i));
  EXPECT_EQ(other_ids, want_other);
  EXPECT_EQ(store_.FullListings(), full_before);

  // A page that ends exactly at the last application has no next page.
  v1::ListApplicationsRequest exact;
  exact.set_page_size(500);
  exact.set_page_token(absl::StrFormat("app-%05d", kApps - 501));
  absl::StatusOr<v1::ListApplicationsResponse> last = catalog_.ListApplications(exact);
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(last->applications_size(), 500);
  EXPECT_EQ(last->next_page_token(), "");
}

TEST_F(CatalogTest, GetApplicationReportsEachEnvironmentsStatusFromItsPlans) {
  ASSERT_TRUE(catalog_.CreateEnvironment(EnvSpec("local", v1::APPROVAL_POLICY_AUTO), User("alice")).ok());
  ASSERT_TRUE(catalog_.CreateEnvironment(EnvSpec("prod", v1::APPROVAL_POLICY_AUTO), User("alice")).ok());
  ASSERT_TRUE(catalog_.CreateApplication(AppSpec("web", "apps/web", {"local", "prod"}), User("alice")).ok());
  InsertPlan(store_, "web", "local", v1::PLAN_STATE_SUCCEEDED, "old");
  v1::Plan pending = InsertPlan(store_, "web", "local", v1::PLAN_STATE_PENDING, "new");
  auto app = catalog_.GetApplication("web");
  ASSERT_TRUE(app.ok());
  ASSERT_EQ(app->status_size(), 2);
  EXPECT_EQ(app->status(0).environment_id(), "local");
  EXPECT_EQ(app->status(0).deployed_sha(), "old");
  EXPECT_EQ(app->status(0).last_plan_id(), pending.id());
  EXPECT_EQ(app->status(0).sync_status(), v1::SYNC_STATUS_OUT_OF_SYNC);
  EXPECT_EQ(app->status(1).sync_status(), v1::SYNC_STATUS_UNKNOWN);
}

}  // namespace
}  // namespace ferry::planner
