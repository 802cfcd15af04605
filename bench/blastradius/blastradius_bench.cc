// The measurement driver of bench/blastradius/run (not a test): the blast
// radius of a pull request in a monorepo of Kustomize applications that
// touches one shared base. Real BlastRadius, Renderer (kubectl kustomize in
// its sandbox) and PostgresPlannerStore (catalog and render cache) on the
// given database; the repo-watcher faked in memory at its seam
// (FakeRepoSource: whole trees, blob ids content hashes).
//   blastradius_bench <postgres-url> <apps> <apps-per-base> <repeats>
// Prints one JSON object: per repeat the seconds of one Compute, the
// entries found, applications compared, repo-watcher calls, and the CPU
// seconds of this process and of its children (the kubectl runs).
#include <sys/resource.h>

#include <cstdlib>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/clock/clock.h"
#include "common/outbox/postgres_outbox_store.h"
#include "common/postgres/migrator.h"
#include "planner_migrations.h"
#include "services/planner/postgres_planner_store.h"
#include "services/planner/preview/blast_radius.h"
#include "services/planner/preview/snapshot_repo_source.h"
#include "services/planner/renderer.h"
#include "tests/planner/fake_repo_source.h"

namespace fp = ferry::planner;
namespace v1 = ferry::v1;
using nlohmann::json;

namespace {

[[noreturn]] void Die(const std::string& what, const absl::Status& s) {
  std::cerr << what << ": " << s << "\n";
  std::exit(1);
}

double CpuSeconds(int who) {
  rusage u{};
  getrusage(who, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

std::string Deployment(int base, int replicas) {
  return absl::StrFormat(
      "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-%d\nspec:\n  replicas: %d\n  selector:\n"
      "    matchLabels: {app: web-%d}\n  template:\n    metadata:\n      labels: {app: web-%d}\n    spec:\n"
      "      containers:\n      - name: main\n        image: nginx:1.27\n",
      base, replicas, base, base);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: blastradius_bench <postgres-url> <apps> <apps-per-base> <repeats>\n";
    return 2;
  }
  const std::string url = argv[1];
  const int apps = std::atoi(argv[2]);
  const int per_base = std::atoi(argv[3]);
  const int repeats = std::atoi(argv[4]);
  const int bases = (apps + per_base - 1) / per_base;

  absl::StatusOr<std::unique_ptr<ferry::postgres::ConnectionPool>> pool =
      ferry::postgres::ConnectionPool::Connect({url, 8, absl::Seconds(10)});
  if (!pool.ok()) Die("connect", pool.status());
  if (absl::Status s = ferry::postgres::Migrate(**pool, PlannerMigrations()); !s.ok()) Die("migrate", s);
  ferry::outbox::PostgresOutboxStore outbox(pool->get(), "planner", "planner");
  fp::PostgresPlannerStore store(pool->get(), &outbox);
  fp::testing::FakeRepoSource repo;
  fp::RendererOptions options;
  options.helm_path = std::string(FERRY_TOOLS_BIN_DIR) + "/helm";
  options.kubectl_path = std::string(FERRY_TOOLS_BIN_DIR) + "/kubectl";
  ferry::SystemClock clock;

  // The monorepo: `bases` shared bases, each used by `per_base` overlays.
  fp::testing::FakeTree tree;
  for (int b = 0; b < bases; ++b) {
    tree[absl::StrFormat("bases/b%02d/kustomization.yaml", b)].data = "resources:\n- deployment.yaml\n- service.yaml\n";
    tree[absl::StrFormat("bases/b%02d/deployment.yaml", b)].data = Deployment(b, 2);
    tree[absl::StrFormat("bases/b%02d/service.yaml", b)].data = absl::StrFormat(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web-%d\nspec:\n  selector: {app: web-%d}\n  ports:\n"
        "  - port: 80\n",
        b, b);
  }
  fp::ConfigChange change;
  for (const char* id : {"staging", "prod"}) {
    v1::Environment env;
    env.set_id(id);
    env.set_approval(std::string(id) == "prod" ? v1::APPROVAL_POLICY_MANUAL : v1::APPROVAL_POLICY_AUTO);
    if (std::string(id) == "prod") env.add_required_checks("ci/test");
    change.create_environments.push_back(env);
  }
  for (int i = 0; i < apps; ++i) {
    const std::string path = absl::StrFormat("apps/app-%04d", i);
    tree[path + "/kustomization.yaml"].data = absl::StrFormat(
        "namespace: app-%04d\nresources:\n- ../../bases/b%02d\n- config.yaml\n", i, i % bases);
    tree[path + "/config.yaml"].data =
        absl::StrFormat("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-%04d\ndata:\n  id: \"%d\"\n", i, i);
    v1::Application app;
    app.set_id(absl::StrFormat("app-%04d", i));
    app.set_repository_id("mono");
    app.set_ref("main");
    app.set_path(path);
    app.set_render_method(v1::RENDER_METHOD_KUSTOMIZE);
    app.add_environment_ids("staging");
    app.add_environment_ids("prod");
    app.mutable_sync_policy()->set_automated(true);
    change.create_applications.push_back(app);
  }
  if (absl::Status s = store.ApplyConfigChange(change); !s.ok()) Die("catalog", s);
  const v1::Revision base = repo.Commit("mono", "refs/heads/main", tree);

  // The render cache as the planner leaves it after deploying the base: the
  // applications of the touched base rendered at it.
  {
    fp::Renderer renderer(&repo, options);
    for (int i = 0; i < apps; i += bases) {
      v1::Application app = change.create_applications[i];
      absl::StatusOr<fp::RenderInputs> inputs = renderer.CollectInputs(app, base.sha());
      if (!inputs.ok()) Die("warm inputs", inputs.status());
      absl::StatusOr<std::vector<v1::Manifest>> m = renderer.Render(app, base.sha(), *inputs);
      if (!m.ok()) Die("warm render", m.status());
      if (absl::Status s = store.PutCachedRender(inputs->cache_key, *m); !s.ok()) Die("warm cache", s);
    }
  }

  json runs = json::array();
  for (int r = 0; r < repeats; ++r) {
    // A new head each time (another replica count): nothing of the head cached.
    fp::testing::FakeTree head = tree;
    head["bases/b00/deployment.yaml"].data = Deployment(0, 3 + r);
    v1::Revision rev = repo.Commit("mono", absl::StrCat("refs/pull/", r + 1, "/head"), head);
    v1::PullRequest pr;
    pr.set_repository_id("mono");
    pr.set_number(r + 1);
    pr.set_head_sha(rev.sha());
    pr.set_base_ref("refs/heads/main");
    pr.set_base_sha(base.sha());
    pr.set_state(v1::PULL_REQUEST_STATE_OPEN);
    // A fresh snapshot per run: the tree listings are read again.
    fp::SnapshotRepoSource snapshot(&repo);
    fp::Renderer renderer(&snapshot, options);
    renderer.Version(v1::RENDER_METHOD_KUSTOMIZE);  // kubectl version, asked once per process in the planner
    fp::BlastRadius radius(&store, &store, &snapshot, &renderer, nullptr, &clock, fp::BlastRadiusOptions());
    const size_t reads_before = repo.reads();
    const double self_before = CpuSeconds(RUSAGE_SELF), children_before = CpuSeconds(RUSAGE_CHILDREN);
    const absl::Time start = absl::Now();
    absl::StatusOr<v1::PullRequestPreview> preview = radius.Compute(pr);
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
    if (!preview.ok()) Die("compute", preview.status());
    if (preview->entries_size() != 2 * per_base) {
      std::cerr << "expected " << 2 * per_base << " entries, got " << preview->entries_size() << "\n";
      return 1;
    }
    // Each entry is the one change made: the base's Deployment scaled.
    for (const v1::PreviewEntry& e : preview->entries()) {
      if (e.actions_size() != 1 || e.actions(0).action() != v1::OBJECT_ACTION_UPDATE ||
          e.actions(0).object().kind() != "Deployment") {
        std::cerr << "entry " << e.application_id() << "/" << e.environment_id() << " is not one Deployment update: "
                  << e.ShortDebugString().substr(0, 2000) << "\n";
        return 1;
      }
    }
    runs.push_back({{"seconds", seconds},
                    {"entries", preview->entries_size()},
                    {"applications_considered", preview->applications_considered()},
                    {"applications_compared", preview->applications_compared()},
                    {"repo_watcher_calls", repo.reads() - reads_before},
                    {"cpu_seconds_planner", CpuSeconds(RUSAGE_SELF) - self_before},
                    {"cpu_seconds_kubectl", CpuSeconds(RUSAGE_CHILDREN) - children_before}});
    std::cerr << "repeat " << r + 1 << ": " << seconds << " s, " << preview->entries_size() << " entries\n";
  }
  std::cout << json({{"apps", apps}, {"apps_per_base", per_base}, {"runs", runs}}).dump() << "\n";
  return 0;
}
