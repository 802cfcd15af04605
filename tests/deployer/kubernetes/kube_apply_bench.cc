// Measurements for bench/kubeapply/run (reported, never a timed test).
//   kube_apply_bench <kubeconfig> <namespace> <count> <phase: deploy|change>
// Deploys one plan of <count> ConfigMaps (deploy), or the same plan with one
// ConfigMap changed (change), through the deployer in-process: the real
// PostgresDeploymentStore (FERRY_BENCH_DATABASE_URL) and the Kubernetes
// target against the API server of <kubeconfig>; the planner is faked at the
// PlanSource seam. Prints {"wall_s", "steps", "state"}.

#include <cstdlib>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/outbox/postgres_outbox_store.h"
#include "common/postgres/migrator.h"
#include "deployer_migrations.h"
#include "services/deployer/deployer.h"
#include "services/deployer/host/host_target.h"
#include "services/deployer/kubernetes/kubernetes_target.h"
#include "services/deployer/postgres_deployment_store.h"
#include "services/deployer/target_router.h"
#include "tests/deployer/test_util.h"

namespace ferry::deployer {
namespace {

int Main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: kube_apply_bench <kubeconfig> <namespace> <count> <deploy|change>\n";
    return 2;
  }
  const char* url = std::getenv("FERRY_BENCH_DATABASE_URL");
  if (url == nullptr) {
    std::cerr << "FERRY_BENCH_DATABASE_URL is not set\n";
    return 2;
  }
  std::string kubeconfig = argv[1], ns = argv[2], phase = argv[4];
  int count = std::atoi(argv[3]);
  auto pool = *postgres::ConnectionPool::Connect({.url = url, .size = 4});
  if (absl::Status m = postgres::Migrate(*pool, DeployerMigrations()); !m.ok()) {
    std::cerr << m << "\n";
    return 1;
  }
  outbox::PostgresOutboxStore outbox(pool.get(), "deployer", "deployer");
  PostgresDeploymentStore store(pool.get(), &outbox);
  host::HostTargetFactory host;
  kubernetes::KubernetesTargetFactory kube("/nonexistent", "", "");
  TargetRouter router(&host, &kube);
  testing::FakePlanSource plans;
  DeploymentNotifier notifier;
  prometheus::Registry registry;
  DeployerMetrics metrics(registry);
  SystemClock clock;
  DeployerOptions options;
  options.deployer_id = "bench";
  Deployer deployer(&store, &router, &plans, &notifier, &metrics, &clock, options);

  char sha = phase == "deploy" ? '1' : '2';
  v1::Plan p;
  p.set_id(absl::StrCat("plan-", phase));
  p.set_application_id("bench");
  p.set_environment_id("dev");
  p.set_state(v1::PLAN_STATE_APPROVED);
  p.set_trigger(v1::PLAN_TRIGGER_NEW_REVISION);
  p.mutable_target_revision()->set_repository_id("repo");
  p.mutable_target_revision()->set_sha(std::string(40, sha));
  p.set_manifests_digest("sha256:" + std::string(40, sha));
  for (int i = 0; i < count; ++i) {
    std::string name = absl::StrCat("cm-", i);
    std::string value = phase == "change" && i == count / 2 ? "changed" : "v1";
    v1::Manifest* m = p.add_manifests();
    m->mutable_object()->set_kind("ConfigMap");
    m->mutable_object()->set_name(name);
    m->set_json(absl::StrCat(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":")", name,
                             R"("},"data":{"value":")", value, R"("}})"));
    m->set_source_path("apps/bench/configmaps.yaml");
  }
  p.mutable_target()->set_kind(v1::TARGET_KIND_KUBERNETES);
  p.mutable_target()->mutable_kubernetes()->set_kubeconfig(kubeconfig);
  p.mutable_target()->mutable_kubernetes()->set_namespace_(ns);
  p.mutable_sync_policy()->set_automated(true);
  p.mutable_health_timeout()->set_seconds(120);
  p.mutable_decision()->set_automatic(true);
  p.mutable_decision()->mutable_actor()->set_id("ferry");

  absl::Time start = absl::Now();
  absl::StatusOr<std::string> id = deployer.HandlePlan(p);
  if (!id.ok()) {
    std::cerr << id.status() << "\n";
    return 1;
  }
  deployer.WaitIdle();
  double wall = absl::ToDoubleSeconds(absl::Now() - start);
  absl::StatusOr<v1::Deployment> d = store.Get(*id, true);
  deployer.Stop();
  notifier.Shutdown();
  if (!d.ok()) {
    std::cerr << d.status() << "\n";
    return 1;
  }
  std::cout << "{\"wall_s\": " << wall << ", \"steps\": " << d->steps_size() << ", \"state\": \""
            << v1::DeploymentState_Name(d->state()) << "\"}\n";
  return d->state() == v1::DEPLOYMENT_STATE_SUCCEEDED ? 0 : 1;
}

}  // namespace
}  // namespace ferry::deployer

int main(int argc, char** argv) { return ferry::deployer::Main(argc, argv); }
