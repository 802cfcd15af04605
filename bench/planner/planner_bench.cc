// Measurements for bench/planner/run (not a test). Each mode runs in its own
// process so that its peak RSS is its own.
//   planner_bench plan <database-url> <apps>
//       1,000 plain applications in one repository: plan after a first
//       commit, after a commit touching every application, and after one
//       touching a single application. Real Planner + PostgresPlannerStore;
//       the repo-watcher and deployer are in-memory fakes.
//   planner_bench diff <work-dir> <objects> <repeats>
//       Diff a <objects>-object application against live state (10 % of the
//       objects changed, every live object carrying target-managed fields),
//       beside `kubectl kustomize` + `diff -u` on the same input.
// Prints one JSON object on stdout.

#include <sys/resource.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>
#include <prometheus/registry.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/concurrency/change_signal.h"
#include "common/outbox/postgres_outbox_store.h"
#include "common/postgres/migrator.h"
#include "planner_migrations.h"
#include "services/planner/differ.h"
#include "services/planner/manifest_parser.h"
#include "services/planner/planner.h"
#include "services/planner/postgres_planner_store.h"
#include "services/planner/renderer.h"
#include "tests/planner/fake_live_state_source.h"
#include "tests/planner/fake_repo_source.h"

namespace fp = ferry::planner;
namespace v1 = ferry::v1;
using nlohmann::json;

namespace {

double PeakRssMib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

[[noreturn]] void Die(const std::string& what, const absl::Status& s) {
  std::cerr << what << ": " << s << "\n";
  std::exit(1);
}

std::string AppYaml(int i, int version) {
  return absl::StrFormat(
      "apiVersion: ferry.dev/v1\nkind: ConfigFile\nmetadata:\n  name: app-%04d-conf\n  annotations: {ferry.dev/sync-wave: \"-1\"}\n"
      "spec:\n  path: app-%04d.conf\n  content: \"version=%d\\n\"\n---\n"
      "apiVersion: ferry.dev/v1\nkind: Process\nmetadata:\n  name: app-%04d\nspec:\n  command: [/bin/sleep, \"3600\"]\n"
      "  env: {VERSION: \"%d\"}\n",
      i, i, version, i, version);
}

int Plan(const std::string& url, int apps) {
  absl::StatusOr<std::unique_ptr<ferry::postgres::ConnectionPool>> pool =
      ferry::postgres::ConnectionPool::Connect({url, 8, absl::Seconds(10)});
  if (!pool.ok()) Die("connect", pool.status());
  if (absl::Status s = ferry::postgres::Migrate(**pool, PlannerMigrations()); !s.ok()) Die("migrate", s);
  ferry::outbox::PostgresOutboxStore outbox(pool->get(), "planner", "planner");
  fp::PostgresPlannerStore store(pool->get(), &outbox);
  fp::testing::FakeRepoSource repo;
  fp::testing::FakeLiveStateSource live;
  fp::Renderer renderer(&repo, fp::RendererOptions{});
  ferry::SystemClock clock;
  ferry::concurrency::ChangeSignal notifier;
  prometheus::Registry registry;
  fp::PlannerMetrics metrics(&registry);
  fp::Planner planner(&store, &repo, &live, &renderer, &clock, &notifier, &metrics);

  v1::Actor actor;
  actor.set_id("bench");
  v1::Environment env;
  env.set_id("local");
  env.mutable_target()->set_kind(v1::TARGET_KIND_HOST);
  env.mutable_target()->mutable_host()->set_root_dir("/tmp/ferry-bench");
  env.set_approval(v1::APPROVAL_POLICY_AUTO);
  if (auto e = planner.CreateEnvironment(env, actor); !e.ok()) Die("environment", e.status());
  fp::testing::FakeTree tree;
  for (int i = 0; i < apps; ++i) {
    v1::Application app;
    app.set_id(absl::StrFormat("app-%04d", i));
    app.set_repository_id("mono");
    app.set_ref("main");
    app.set_path(absl::StrFormat("apps/app-%04d", i));
    app.set_render_method(v1::RENDER_METHOD_PLAIN);
    app.add_environment_ids("local");
    app.mutable_sync_policy()->set_automated(true);
    if (auto a = planner.CreateApplication(app, actor); !a.ok()) Die("application", a.status());
    tree[absl::StrFormat("apps/app-%04d/app.yaml", i)].data = AppYaml(i, 1);
  }
  json out = json::object();
  auto measure = [&](const std::string& name, const v1::Revision& rev) {
    size_t bytes_before = repo.bytes_read();
    absl::Time start = absl::Now();
    absl::StatusOr<int> made = planner.HandleRevision(rev);
    double seconds = absl::ToDoubleSeconds(absl::Now() - start);
    if (!made.ok()) Die(name, made.status());
    out[name] = {{"seconds", seconds},
                 {"plans", *made},
                 {"changed_paths", rev.all_paths_changed() ? apps : rev.changed_paths_size()},
                 {"file_bytes_read", repo.bytes_read() - bytes_before},
                 {"peak_rss_mib_so_far", PeakRssMib()}};
    std::cerr << name << ": " << seconds << " s, " << *made << " plans\n";
  };
  measure("first_commit", repo.Commit("mono", "refs/heads/main", tree));
  for (int i = 0; i < apps; ++i) tree[absl::StrFormat("apps/app-%04d/app.yaml", i)].data = AppYaml(i, 2);
  measure("touch_all", repo.Commit("mono", "refs/heads/main", tree));
  tree["apps/app-0500/app.yaml"].data = AppYaml(500, 3);
  measure("touch_one", repo.Commit("mono", "refs/heads/main", tree));
  out["apps"] = apps;
  out["objects_per_app"] = 2;
  out["peak_rss_mib"] = PeakRssMib();
  std::cout << out.dump() << "\n";
  return 0;
}

std::string ConfigMap(int i, bool changed) {
  return absl::StrFormat(
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%04d\n  namespace: shop\n  labels: {app: shop, tier: "
      "backend}\ndata:\n  key: value-%d\n  mode: %s\n  retries: \"3\"\n  url: http://svc-%d.shop.svc:8080/\n",
      i, i, changed ? "fast" : "safe", i);
}

int Diff(const std::string& dir, int objects, int repeats) {
  namespace fs = std::filesystem;
  fs::create_directories(dir + "/repo/desired");
  fs::create_directories(dir + "/live");
  std::ofstream(dir + "/repo/desired/kustomization.yaml") << "resources: [objects.yaml]\n";
  std::ofstream(dir + "/live/kustomization.yaml") << "resources: [objects.yaml]\n";
  {
    std::ofstream desired(dir + "/repo/desired/objects.yaml"), live(dir + "/live/objects.yaml");
    for (int i = 0; i < objects; ++i) {
      desired << (i ? "---\n" : "") << ConfigMap(i, i % 10 == 0);
      live << (i ? "---\n" : "") << ConfigMap(i, false);
    }
  }
  const std::string tools = FERRY_TOOLS_BIN_DIR;
  // live.yaml as `kubectl kustomize` prints it, for diff -u.
  if (std::system(("cd " + dir + " && " + tools + "/kubectl kustomize live > live.yaml").c_str()) != 0) {
    std::cerr << "kubectl kustomize failed\n";
    return 1;
  }
  // Live objects as the deployer reports them: with target-managed fields.
  std::ifstream live_in(dir + "/live.yaml");
  std::string live_text((std::istreambuf_iterator<char>(live_in)), std::istreambuf_iterator<char>());
  absl::StatusOr<std::vector<v1::Manifest>> live_manifests = fp::ParseManifests(live_text, "live.yaml");
  if (!live_manifests.ok()) Die("parse live", live_manifests.status());
  std::vector<v1::LiveObject> live;
  for (const auto& m : *live_manifests) {
    v1::LiveObject o;
    *o.mutable_object() = m.object();
    json j = json::parse(m.json());
    o.set_applied_json(j.dump());
    j["metadata"]["uid"] = "8d0f6a1e-0000-4000-8000-000000000000";
    j["metadata"]["resourceVersion"] = "12345";
    j["metadata"]["creationTimestamp"] = "2026-11-26T12:00:00Z";
    o.set_live_json(j.dump());
    live.push_back(std::move(o));
  }
  fp::testing::FakeRepoSource repo;
  v1::Revision rev = repo.Commit("r", "refs/heads/main", fp::testing::LoadTree(dir + "/repo"));
  fp::RendererOptions options;
  options.kubectl_path = tools + "/kubectl";
  options.helm_path = tools + "/helm";
  fp::Renderer renderer(&repo, options);
  v1::Application app;
  app.set_id("shop");
  app.set_repository_id("r");
  app.set_path("desired");
  app.set_render_method(v1::RENDER_METHOD_KUSTOMIZE);

  std::vector<double> ferry_full, ferry_diff_only, baseline;
  int updates = 0;
  size_t unified_bytes = 0;
  for (int r = 0; r < repeats; ++r) {
    absl::Time t0 = absl::Now();
    auto inputs = renderer.CollectInputs(app, rev.sha());
    if (!inputs.ok()) Die("inputs", inputs.status());
    auto desired = renderer.Render(app, rev.sha(), *inputs);
    if (!desired.ok()) Die("render", desired.status());
    absl::Time t1 = absl::Now();
    std::vector<v1::PlanAction> actions = fp::DiffObjects(*desired, live, {});
    absl::Time t2 = absl::Now();
    ferry_full.push_back(absl::ToDoubleSeconds(t2 - t0));
    ferry_diff_only.push_back(absl::ToDoubleSeconds(t2 - t1));
    updates = 0;
    unified_bytes = 0;
    for (const auto& a : actions) {
      updates += a.action() == v1::OBJECT_ACTION_UPDATE;
      unified_bytes += a.unified_diff().size();
    }
    absl::Time b0 = absl::Now();
    int rc = std::system(("cd " + dir + " && " + tools +
                          "/kubectl kustomize repo/desired > desired.yaml && { diff -u live.yaml desired.yaml > diff.txt; "
                          "test $? -le 1; }")
                             .c_str());
    baseline.push_back(absl::ToDoubleSeconds(absl::Now() - b0));
    if (rc != 0) {
      std::cerr << "kubectl kustomize + diff -u failed\n";
      return 1;
    }
  }
  auto stats = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return json{{"min", v.front()}, {"median", v[v.size() / 2]}, {"max", v.back()}, {"repeats", v.size()}};
  };
  json out = {{"objects", objects},
              {"changed_objects", updates},
              {"ferry_render_and_diff_seconds", stats(ferry_full)},
              {"ferry_diff_only_seconds", stats(ferry_diff_only)},
              {"kubectl_kustomize_plus_diff_u_seconds", stats(baseline)},
              {"ferry_unified_diff_bytes", unified_bytes},
              {"diff_u_bytes", fs::file_size(dir + "/diff.txt")},
              {"peak_rss_mib", PeakRssMib()}};
  std::cout << out.dump() << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "plan" && argc == 4) return Plan(argv[2], std::atoi(argv[3]));
  if (mode == "diff" && argc == 5) return Diff(argv[2], std::atoi(argv[3]), std::atoi(argv[4]));
  std::cerr << "usage: planner_bench plan <database-url> <apps> | diff <work-dir> <objects> <repeats>\n";
  return 2;
}
