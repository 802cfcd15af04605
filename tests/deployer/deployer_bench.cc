// Measurements for bench/deployer/run (reported, never a timed test).
//   deployer_bench configfiles <root> <phase: deploy|change>
//     Deploys an application of 1,000 ConfigFiles (deploy) or the same with
//     one file changed (change) into the database named by
//     FERRY_BENCH_DATABASE_URL; prints {"wall_s", "peak_rss_kib", "steps"}.
//   deployer_bench processes <root> <replicas>
//     Rollout of N replicas of a trivial server (create, then update), and
//     the bare cost of starting N such servers, in parallel and one by one.

#include <signal.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/outbox/postgres_outbox_store.h"
#include "common/postgres/migrator.h"
#include "deployer_migrations.h"
#include "services/deployer/deployer.h"
#include "services/deployer/host/health_probe.h"
#include "services/deployer/host/host_target.h"
#include "services/deployer/host/detached_process.h"
#include "services/deployer/postgres_deployment_store.h"
#include "tests/deployer/test_util.h"

namespace ferry::deployer {
namespace {

long PeakRssKib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

struct Env {
  std::unique_ptr<postgres::ConnectionPool> pool;
  std::unique_ptr<outbox::PostgresOutboxStore> outbox;
  std::unique_ptr<PostgresDeploymentStore> store;
  host::HostTargetFactory targets{host::RootPolicy(), host::WorkloadPolicy(testing::WorkloadsAsTheTestsUid())};
  testing::FakePlanSource plans;
  DeploymentNotifier notifier;
  prometheus::Registry registry;
  std::unique_ptr<DeployerMetrics> metrics;
  SystemClock clock;
  std::unique_ptr<Deployer> deployer;

  explicit Env(const std::string& url) {
    pool = *postgres::ConnectionPool::Connect({.url = url, .size = 4});
    absl::Status m = postgres::Migrate(*pool, DeployerMigrations());
    if (!m.ok()) {
      std::cerr << m << "\n";
      std::exit(1);
    }
    outbox = std::make_unique<outbox::PostgresOutboxStore>(pool.get(), "deployer", "deployer");
    store = std::make_unique<PostgresDeploymentStore>(pool.get(), outbox.get());
    metrics = std::make_unique<DeployerMetrics>(registry);
    DeployerOptions o;
    o.runner.health_poll = absl::Milliseconds(20);
    deployer = std::make_unique<Deployer>(store.get(), &targets, &plans, &notifier, metrics.get(), &clock, o);
  }
  v1::Deployment Run(const v1::Plan& plan) {
    absl::StatusOr<std::string> id = deployer->HandlePlan(plan);
    deployer->WaitIdle();
    absl::StatusOr<v1::Deployment> d = store->Get(*id, true);
    if (!d.ok() || d->state() != v1::DEPLOYMENT_STATE_SUCCEEDED) {
      std::cerr << "deployment did not succeed: " << (d.ok() ? d->message() : d.status().ToString()) << "\n";
      std::exit(1);
    }
    return *d;
  }
};

int ConfigFiles(const std::string& root, const std::string& phase) {
  const char* url = std::getenv("FERRY_BENCH_DATABASE_URL");
  if (url == nullptr) return 2;
  Env env(url);
  std::vector<nlohmann::json> files;
  for (int i = 0; i < 1000; ++i) {
    std::string content = absl::StrCat("# file ", i, "\nkey_", i, " = value\n", std::string(200, 'x'), "\n");
    if (phase == "change" && i == 500) content += "changed = true\n";
    files.push_back(testing::ConfigFile(absl::StrCat("file-", i), absl::StrCat("conf/", i / 100, "/file-", i, ".conf"), content));
  }
  testing::PlanOptions o;
  o.root = root;
  o.sha = std::string(40, phase == "change" ? 'b' : 'a');
  v1::Plan plan = testing::MakePlan(phase == "change" ? "p-change" : "p-deploy", files, o);
  absl::Time t0 = absl::Now();
  v1::Deployment d = env.Run(plan);
  double wall = absl::ToDoubleSeconds(absl::Now() - t0);
  env.deployer->Stop();
  std::cout << nlohmann::json{{"wall_s", wall}, {"peak_rss_kib", PeakRssKib()}, {"steps", d.steps_size()}}.dump()
            << std::endl;
  return 0;
}

// Starts n trivial servers and waits until all answer; returns the wall time.
double BareStart(const std::string& root, int n, bool parallel) {
  std::vector<host::ProcessIdentity> ids;
  std::vector<int> ports;
  absl::Time t0 = absl::Now();
  auto wait_one = [&](int port) {
    while (!host::ProbeHttp(port, "/healthz", 200, absl::Seconds(1)).ok) absl::SleepFor(absl::Milliseconds(5));
  };
  for (int i = 0; i < n; ++i) {
    int port = host::PickFreePort();
    host::SpawnSpec s{{"/usr/bin/python3", FERRY_TEST_SERVER},
                      {{"PORT", absl::StrCat(port)}, {"VERSION", "bare"}, {"PATH", "/usr/bin:/bin"}},
                      root,
                      absl::StrCat(root, "/bare-", i, ".log")};
    pid_t pid = *host::SpawnDetached(s);
    ids.push_back({pid, host::ProcessStartTime(pid)});
    ports.push_back(port);
    if (!parallel) wait_one(port);
  }
  for (int port : ports) wait_one(port);
  double wall = absl::ToDoubleSeconds(absl::Now() - t0);
  for (const auto& id : ids) host::StopProcess(id, SIGTERM, absl::Seconds(5));
  return wall;
}

int Processes(const std::string& root, int replicas) {
  const char* url = std::getenv("FERRY_BENCH_DATABASE_URL");
  if (url == nullptr) return 2;
  Env env(url);
  testing::PlanOptions o;
  o.root = root;
  o.health_timeout = absl::Minutes(5);
  o.sha = std::string(40, '1');
  absl::Time t0 = absl::Now();
  env.Run(testing::MakePlan("p1", {testing::ServerProcess("web", "v1", replicas)}, o));
  double create = absl::ToDoubleSeconds(absl::Now() - t0);
  o.sha = std::string(40, '2');
  t0 = absl::Now();
  env.Run(testing::MakePlan("p2", {testing::ServerProcess("web", "v2", replicas)}, o));
  double update = absl::ToDoubleSeconds(absl::Now() - t0);
  env.deployer->Stop();
  testing::KillAllUnder(root);
  double bare_parallel = BareStart(root, replicas, true);
  double bare_sequential = BareStart(root, replicas, false);
  std::cout << nlohmann::json{{"rollout_create_s", create},
                              {"rollout_update_s", update},
                              {"bare_parallel_s", bare_parallel},
                              {"bare_sequential_s", bare_sequential}}
                   .dump()
            << std::endl;
  return 0;
}

}  // namespace
}  // namespace ferry::deployer

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "configfiles") return ferry::deployer::ConfigFiles(argv[2], argv[3]);
  if (argc == 4 && std::string(argv[1]) == "processes") return ferry::deployer::Processes(argv[2], std::atoi(argv[3]));
  std::cerr << "usage: deployer_bench configfiles <root> deploy|change | processes <root> <replicas>\n";
  return 2;
}
