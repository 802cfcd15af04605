// The limits of parse_limits.h and sync_window.h as the planner applies
// them: through the revision path (a hostile application fails alone, its
// neighbour plans), the catalog API and ferry.yaml, with the flags' values
// passed through the Planner's constructor.
#include "services/planner/parse_limits.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "services/planner/declarative_config.h"
#include "services/planner/sync_window.h"
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

// Nine levels of nine aliases: 9^9 strings once expanded.
std::string BillionLaughs() {
  std::string s = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lol\n";
  s += "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n";
  for (char c = 'b'; c <= 'i'; ++c) {
    std::string prev(1, static_cast<char>(c - 1));
    s += absl::StrCat(std::string(1, c), ": &", std::string(1, c), " [");
    for (int i = 0; i < 9; ++i) s += absl::StrCat(i ? "," : "", "*", prev);
    s += "]\n";
  }
  return s + "data: {x: *i}\n";
}

TEST(ParseLimitsThroughThePlannerTest, ABillionLaughsApplicationFailsAloneAndItsNeighbourPlans) {
  PlannerOverFakes f;
  ASSERT_TRUE(f.planner.CreateEnvironment(EnvSpec("local", v1::APPROVAL_POLICY_AUTO), User("alice")).ok());
  ASSERT_TRUE(f.planner.CreateApplication(AppSpec("bad", "apps/bad", {"local"}), User("alice")).ok());
  ASSERT_TRUE(f.planner.CreateApplication(AppSpec("good", "apps/good", {"local"}), User("alice")).ok());
  v1::Revision rev = f.repo.Commit("repo", kRef,
                                   {{"apps/bad/deploy.yaml", {BillionLaughs(), ""}},
                                    {"apps/good/cm.yaml", {ConfigMap("good", "1"), ""}}});
  absl::StatusOr<int> planned = f.planner.revision_planner()->HandleRevision(rev);
  ASSERT_TRUE(planned.ok()) << planned.status();

  std::vector<v1::Plan> bad = f.Plans("bad");
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_EQ(bad[0].state(), v1::PLAN_STATE_FAILED);
  EXPECT_EQ(bad[0].failure().path(), "apps/bad/deploy.yaml");
  EXPECT_EQ(bad[0].failure().line(), 10);  // "f:", the level whose copy passes the budget
  EXPECT_NE(bad[0].failure().message().find(
                "apps/bad/deploy.yaml:10: more than 1000000 YAML nodes after alias expansion (limit --max-yaml-nodes)"),
            std::string::npos)
      << bad[0].failure().message();

  std::vector<v1::Plan> good = f.Plans("good");
  ASSERT_EQ(good.size(), 1u);
  EXPECT_EQ(good[0].state(), v1::PLAN_STATE_APPROVED);
  EXPECT_EQ(f.ReleasedIds(), std::vector<std::string>{good[0].id()});
}

// A Planner over the fakes with limits set as the flags would.
struct LimitedPlanner {
  explicit LimitedPlanner(ParseLimits parse, SyncWindowLimits windows)
      : renderer(&f.repo, [&] {
          RendererOptions o;
          o.parse_limits = parse;
          return o;
        }()),
        planner(&f.store, &f.repo, &f.live, &renderer, &f.clock, &f.notifier, &f.metrics, 8, parse, windows) {}
  PlannerOverFakes f;
  Renderer renderer;
  Planner planner;
};

TEST(ParseLimitsThroughThePlannerTest, TheFlagsValuesReachTheRender) {
  ParseLimits parse;
  parse.max_objects = 3;
  LimitedPlanner p(parse, SyncWindowLimits());
  ASSERT_TRUE(p.planner.CreateEnvironment(EnvSpec("local", v1::APPROVAL_POLICY_AUTO), User("alice")).ok());
  ASSERT_TRUE(p.planner.CreateApplication(AppSpec("many", "apps/many", {"local"}), User("alice")).ok());
  ASSERT_TRUE(p.planner.CreateApplication(AppSpec("few", "apps/few", {"local"}), User("alice")).ok());
  FakeTree tree;
  for (int i = 0; i < 4; ++i) tree[absl::StrCat("apps/many/cm", i, ".yaml")] = {ConfigMap(absl::StrCat("c", i), "1"), ""};
  tree["apps/few/cm.yaml"] = {ConfigMap("few", "1"), ""};
  ASSERT_TRUE(p.planner.revision_planner()->HandleRevision(p.f.repo.Commit("repo", kRef, tree)).ok());
  PlanFilter filter;
  filter.limit = 10;
  filter.application_id = "many";
  std::vector<v1::Plan> many = p.f.store.ListPlans(filter)->plans;
  ASSERT_EQ(many.size(), 1u);
  EXPECT_EQ(many[0].state(), v1::PLAN_STATE_FAILED);
  EXPECT_NE(many[0].failure().message().find("more than 3 objects (limit --max-objects-per-app)"), std::string::npos)
      << many[0].failure().message();
  filter.application_id = "few";
  EXPECT_EQ(p.f.store.ListPlans(filter)->plans.at(0).state(), v1::PLAN_STATE_APPROVED);
}

v1::Environment WithWindows(int n, const std::string& schedule = "0 9 * * *") {
  v1::Environment env = EnvSpec("prod", v1::APPROVAL_POLICY_AUTO);
  for (int i = 0; i < n; ++i) {
    v1::SyncWindow* w = env.add_sync_windows();
    w->set_kind(v1::SYNC_WINDOW_KIND_ALLOW);
    w->set_schedule(schedule);
    w->mutable_duration()->set_seconds(3600);
  }
  return env;
}

TEST(SyncWindowLimitsThroughThePlannerTest, CreateAndUpdateEnvironmentRefuseTooManyOrTooLongWindows) {
  SyncWindowLimits windows;
  windows.max_windows = 3;
  windows.max_schedule_bytes = 20;
  LimitedPlanner p(ParseLimits(), windows);
  absl::StatusOr<v1::Environment> four = p.planner.CreateEnvironment(WithWindows(4), User("alice"));
  ASSERT_FALSE(four.ok());
  EXPECT_EQ(four.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(four.status().message(),
            "environment.sync_windows: 4 sync windows, more than 3 (limit --max-sync-windows)");
  absl::StatusOr<v1::Environment> long_cron =
      p.planner.CreateEnvironment(WithWindows(1, "0,1,2,3,4,5,6,7,8,9 9 * * *"), User("alice"));
  ASSERT_FALSE(long_cron.ok());
  EXPECT_EQ(long_cron.status().message(),
            "environment.sync_windows[0].schedule: 27 bytes, more than 20 (limit --max-cron-length)");

  ASSERT_TRUE(p.planner.CreateEnvironment(WithWindows(3), User("alice")).ok());
  google::protobuf::FieldMask mask;
  mask.add_paths("sync_windows");
  absl::StatusOr<v1::Environment> updated = p.planner.UpdateEnvironment(WithWindows(4), mask, User("alice"));
  ASSERT_FALSE(updated.ok());
  EXPECT_NE(updated.status().message().find("(limit --max-sync-windows)"), std::string::npos) << updated.status();
  EXPECT_EQ(p.planner.GetEnvironment("prod")->sync_windows_size(), 3) << "nothing half-applied";
}

TEST(SyncWindowLimitsThroughThePlannerTest, DefaultsAllowFiftyWindows) {
  PlannerOverFakes f;
  EXPECT_TRUE(f.planner.CreateEnvironment(WithWindows(50), User("alice")).ok());
  v1::Environment more = WithWindows(51);
  more.set_id("prod2");
  absl::StatusOr<v1::Environment> refused = f.planner.CreateEnvironment(more, User("alice"));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("more than 50 (limit --max-sync-windows)"), std::string::npos);
}

}  // namespace
}  // namespace ferry::planner
