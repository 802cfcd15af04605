// Two ferry-deployer replicas of one deployer group, as users run them: real
// binaries against one PostgreSQL and one host environment root, fed by an
// in-process fake planner. The replica holding the environment's lease is
// killed (SIGKILL) or paused (SIGSTOP) in the middle of a deployment whose
// health check is slow: the other takes the lease over within the lease
// time and finishes the deployment; the workload is started once, nothing
// is lost, the takeover is audited, and a paused ex-holder that wakes up
// records nothing. And replicas that see the host differently (one in a PID
// namespace of its own, as on another machine) do not "heal" each other's
// processes: only the lease holder checks drift.

#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "common/outbox/postgres_outbox_store.h"
#include "services/deployer/host/host_target.h"
#include "services/deployer/postgres_deployment_store.h"
#include "tests/deployer/fake_planner_service.h"
#include "tests/deployer/test_util.h"
#include "tests/support/service_process.h"
#include "tests/support/test_database.h"

namespace ferry::deployer {
namespace {

using testing::FakePlanner;
using testing::MakePlan;
using testing::PlanOptions;
using testing::ServerProcess;

constexpr absl::Duration kLeaseTtl = absl::Seconds(3);

class DeployerReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = ferry::testing::MakeTempDir("deployer-replicas");
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &planner_port_);
    builder.RegisterService(&planner_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(planner_port_, 0);
    pool_ = db_.Pool(2);
    outbox_ = std::make_unique<outbox::PostgresOutboxStore>(pool_.get(), "deployer", "deployer");
  }
  void TearDown() override {
    if (stopped_pid_ > 0) kill(stopped_pid_, SIGCONT);
    replicas_.clear();
    if (namespaced_pid_ > 0) {
      kill(namespaced_pid_, SIGKILL);  // --kill-child: its PID namespace dies with it.
      waitpid(namespaced_pid_, nullptr, 0);
    }
    planner_.Shutdown();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    testing::KillAllUnder(root_);
  }
  std::vector<std::string> Args(const std::string& id, const std::string& drift_interval) {
    return {"--database-url=" + db_.url(),
            absl::StrCat("--planner-address=127.0.0.1:", planner_port_),
            "--audit-address=127.0.0.1:1",
            "--drift-interval=" + drift_interval,
            "--deployer-id=" + id,
            "--deployer-group=default",
            absl::StrCat("--lease-ttl=", absl::ToInt64Seconds(kLeaseTtl), "s")};
  }
  void StartReplica(const std::string& id, const std::string& drift_interval = "1h") {
    auto d = ferry::testing::ServiceProcess::Start("ferry-deployer", Args(id, drift_interval));
    ASSERT_TRUE(d.ok()) << d.status();
    replicas_[id] = std::move(*d);
  }
  // A replica in a PID namespace (and /proc) of its own: it sees none of the
  // other replica's processes, as a replica on another machine would not.
  // False when this machine cannot make one (the test is then skipped).
  bool StartNamespacedReplica(const std::string& id, const std::string& drift_interval) {
    if (ferry::testing::RunCommand({"unshare", "--pid", "--fork", "--mount-proc", "true"}).exit_code != 0) return false;
    int grpc_port = ferry::testing::FreePort();
    std::vector<std::string> args = {"unshare", "--pid", "--mount-proc", "--kill-child",
                                     ferry::testing::BinaryPath("ferry-deployer")};
    for (std::string& a : Args(id, drift_interval)) args.push_back(std::move(a));
    args.push_back(absl::StrCat("--grpc-address=127.0.0.1:", grpc_port));
    args.push_back(absl::StrCat("--metrics-address=127.0.0.1:", ferry::testing::FreePort()));
    args.push_back("--insecure-plaintext");
    args.push_back("--insecure-no-auth");
    namespaced_log_ = root_ + "-namespaced.log";
    pid_t pid = fork();
    if (pid == 0) {
      int fd = open(namespaced_log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execvp(argv[0], argv.data());
      _exit(127);
    }
    namespaced_pid_ = pid;
    absl::Status serving =
        ferry::testing::WaitForServing(absl::StrCat("127.0.0.1:", grpc_port), absl::Seconds(30));
    EXPECT_TRUE(serving.ok()) << serving << "\n" << ReadFile(namespaced_log_);
    return true;
  }
  static std::string ReadFile(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  PlanOptions Opts(char sha, bool self_heal = false) {
    PlanOptions o;
    o.root = root_;
    o.sha = std::string(40, sha);
    o.health_timeout = absl::Seconds(60);
    o.self_heal = self_heal;
    return o;
  }
  // How often the workload was started (server.py's START_LOG).
  int Starts() {
    std::ifstream in(StartLog());
    int n = 0;
    for (std::string line; std::getline(in, line);) ++n;
    return n;
  }
  std::string StartLog() const { return root_ + "-starts.log"; }
  std::string Holder(const std::string& env) {
    std::string holder;
    absl::Status s = pool_->RunInTransaction([&](pqxx::work& txn) {
      pqxx::result r = txn.exec_params("SELECT holder FROM deployer.environment_leases WHERE environment_id = $1", env);
      if (!r.empty()) holder = r[0][0].as<std::string>();
      return absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s;
    return holder;
  }
  int64_t Count(const std::string& sql) {
    int64_t n = -1;
    absl::Status s = pool_->RunInTransaction([&](pqxx::work& txn) {
      n = txn.exec(sql)[0][0].as<int64_t>();
      return absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s;
    return n;
  }
  // The lease events in the deployer's outbox (no audit service runs).
  std::vector<v1::Event> LeaseEvents() {
    std::vector<v1::Event> out;
    absl::Status s = pool_->RunInTransaction([&](pqxx::work& txn) {
      for (const pqxx::row& row : txn.exec("SELECT event FROM deployer.outbox ORDER BY id")) {
        v1::Event e;
        pqxx::binarystring bytes(row[0]);
        if (e.ParseFromString(bytes.str()) && e.action() == v1::AUDIT_ACTION_ENVIRONMENT_LEASE_ACQUIRED) {
          out.push_back(e);
        }
      }
      return absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }
  template <typename Cond>
  bool WaitFor(Cond cond, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (cond()) return true;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return cond();
  }
  std::vector<std::string> ServedVersions() {
    std::vector<std::string> out;
    for (const host::Instance& i : host::HostTarget(root_).processes().LiveInstances("web-app", "web")) {
      httplib::Client c("127.0.0.1", i.ports.at("http"));
      auto res = c.Get("/");
      out.push_back(res && res->status == 200 ? res->body : "down");
    }
    return out;
  }
  std::string Logs() {
    std::string out;
    for (auto& [id, p] : replicas_) absl::StrAppend(&out, "--- ", id, " ---\n", p->Log(), "\n");
    return out;
  }
  // Both replicas take the plan; the lease holder runs it. Returns the
  // holder once the workload was started (its health check takes 4 s).
  std::string ReleaseSlowPlanAndFindHolder() {
    planner_.Release(MakePlan("plan-1",
                              {ServerProcess("web", "v1", 1, {{"START_DELAY", "4"}, {"START_LOG", StartLog()}})},
                              Opts('1')));
    EXPECT_TRUE(WaitFor([&] { return Starts() == 1; }, absl::Seconds(30))) << Logs();
    std::string holder = Holder("dev");
    EXPECT_TRUE(replicas_.count(holder)) << "holder \"" << holder << "\"\n" << Logs();
    PostgresDeploymentStore store(pool_.get(), outbox_.get());
    absl::StatusOr<v1::Deployment> d = store.Get("dep-plan-1", false);
    EXPECT_TRUE(d.ok()) << d.status();
    if (d.ok()) {
      EXPECT_EQ(d->state(), v1::DEPLOYMENT_STATE_RUNNING);
      EXPECT_EQ(d->deployer_id(), holder);
    }
    return holder;
  }
  // The deployment finished once, by `survivor`, resumed from its steps.
  void ExpectFinishedOnceBy(const std::string& survivor) {
    auto result = planner_.ResultFor("plan-1", absl::Seconds(60));
    ASSERT_TRUE(result.has_value()) << Logs();
    EXPECT_EQ(result->state(), v1::PLAN_STATE_SUCCEEDED) << result->message();
    PostgresDeploymentStore store(pool_.get(), outbox_.get());
    absl::StatusOr<v1::Deployment> d = store.Get("dep-plan-1", true);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(d->state(), v1::DEPLOYMENT_STATE_SUCCEEDED) << d->message();
    EXPECT_TRUE(d->recovered());
    EXPECT_EQ(d->deployer_id(), survivor);
    for (const auto& s : d->steps()) EXPECT_NE(s.result(), v1::STEP_RESULT_RUNNING) << s.DebugString();
    EXPECT_EQ(Starts(), 1) << "the workload was started again";
    EXPECT_EQ(ServedVersions(), std::vector<std::string>{"v1"});
    EXPECT_EQ(Count("SELECT count(*) FROM deployer.deployments WHERE state IN (1, 2)"), 0) << "left unfinished";
    EXPECT_EQ(Count("SELECT count(*) FROM deployer.deployments"), 1) << "a second deployment was made";
  }
  void ExpectTakeoverAudited(const std::string& from, const std::string& to) {
    bool found = false;
    for (const v1::Event& e : LeaseEvents()) {
      if (e.details().fields().at("previous_holder").string_value() == from &&
          e.details().fields().at("holder").string_value() == to) {
        found = true;
        EXPECT_EQ(e.subject().environment_id(), "dev");
        EXPECT_NE(e.message().find("took over"), std::string::npos) << e.message();
      }
    }
    EXPECT_TRUE(found) << "no audit event of the takeover from " << from << " by " << to;
  }

  ferry::testing::TestDatabase db_;
  std::unique_ptr<postgres::ConnectionPool> pool_;
  std::unique_ptr<outbox::PostgresOutboxStore> outbox_;
  std::string root_;
  FakePlanner planner_;
  int planner_port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::map<std::string, std::unique_ptr<ferry::testing::ServiceProcess>> replicas_;
  pid_t stopped_pid_ = -1;
  pid_t namespaced_pid_ = -1;
  std::string namespaced_log_;
};

TEST_F(DeployerReplicasTest, KilledHolderMidDeploymentIsTakenOverAndTheDeploymentFinishedOnce) {
  StartReplica("replica-a");
  StartReplica("replica-b");
  const std::string holder = ReleaseSlowPlanAndFindHolder();
  ASSERT_FALSE(HasFailure());
  const std::string survivor = holder == "replica-a" ? "replica-b" : "replica-a";
  const absl::Time killed = absl::Now();
  replicas_[holder]->Kill();
  ASSERT_TRUE(WaitFor([&] { return Holder("dev") == survivor; }, absl::Seconds(20))) << Logs();
  const absl::Duration takeover = absl::Now() - killed;
  std::cout << "takeover after SIGKILL: " << absl::FormatDuration(takeover) << "\n";
  // The lease lapses kLeaseTtl after the last renewal (renewed every third
  // of it), and the survivor looks every third of it.
  EXPECT_LE(takeover, kLeaseTtl + kLeaseTtl / 3 + absl::Seconds(1));
  ExpectFinishedOnceBy(survivor);
  ExpectTakeoverAudited(holder, survivor);
  // The survivor's metrics name it as the holder, with the expiry.
  httplib::Client metrics("127.0.0.1", replicas_[survivor]->metrics_port());
  auto page = metrics.Get("/metrics");
  ASSERT_TRUE(page && page->status == 200);
  EXPECT_NE(page->body.find(absl::StrCat("ferry_environment_lease_expiry_timestamp_seconds{environment=\"dev\",holder=\"",
                                         survivor, "\"}")),
            std::string::npos)
      << page->body;
  EXPECT_NE(page->body.find("ferry_environment_lease_takeovers_total 1"), std::string::npos) << page->body;
  EXPECT_NE(page->body.find("ferry_environment_leases_held 1"), std::string::npos) << page->body;
}

TEST_F(DeployerReplicasTest, PausedHolderIsTakenOverAndRecordsNothingWhenItWakes) {
  StartReplica("replica-a");
  StartReplica("replica-b");
  const std::string holder = ReleaseSlowPlanAndFindHolder();
  ASSERT_FALSE(HasFailure());
  const std::string survivor = holder == "replica-a" ? "replica-b" : "replica-a";
  // Paused (or partitioned): its database sessions stay open, so nothing
  // tied to a session (an advisory lock) would ever be released.
  stopped_pid_ = replicas_[holder]->pid();
  ASSERT_EQ(kill(stopped_pid_, SIGSTOP), 0);
  ASSERT_TRUE(WaitFor([&] { return Holder("dev") == survivor; }, absl::Seconds(20))) << Logs();
  ExpectFinishedOnceBy(survivor);
  ExpectTakeoverAudited(holder, survivor);
  const int64_t steps = Count("SELECT count(*) FROM deployer.steps WHERE deployment_id = 'dep-plan-1'");
  // It wakes up in the middle of its health check, which now passes: it
  // must neither record the step nor go on with the deployment.
  ASSERT_EQ(kill(stopped_pid_, SIGCONT), 0);
  stopped_pid_ = -1;
  // Its next write of deployment state is refused by the fencing check.
  ASSERT_TRUE(WaitFor([&] { return replicas_[holder]->Log().find("nothing recorded") != std::string::npos; },
                      absl::Seconds(20)))
      << replicas_[holder]->Log();
  absl::SleepFor(kLeaseTtl);
  EXPECT_EQ(Count("SELECT count(*) FROM deployer.steps WHERE deployment_id = 'dep-plan-1'"), steps)
      << replicas_[holder]->Log();
  EXPECT_EQ(Holder("dev"), survivor);
  EXPECT_EQ(Starts(), 1);
  EXPECT_EQ(ServedVersions(), std::vector<std::string>{"v1"});
  PostgresDeploymentStore store(pool_.get(), outbox_.get());
  EXPECT_EQ(store.Get("dep-plan-1", false)->state(), v1::DEPLOYMENT_STATE_SUCCEEDED);
  EXPECT_EQ(planner_.ResultsFor("plan-1"), 1) << "the result was reported again";
}

TEST_F(DeployerReplicasTest, ReplicasThatSeeTheHostDifferentlyDoNotHealEachOthersProcesses) {
  // replica-a takes the environment and deploys; replica-b, in a PID
  // namespace of its own, cannot see the workload (as on another machine).
  StartReplica("replica-a", "1s");
  planner_.Release(MakePlan("plan-1", {ServerProcess("web", "v1", 1, {{"START_LOG", StartLog()}})},
                            Opts('1', /*self_heal=*/true)));
  auto result = planner_.ResultFor("plan-1", absl::Seconds(60));
  ASSERT_TRUE(result.has_value()) << Logs();
  ASSERT_EQ(result->state(), v1::PLAN_STATE_SUCCEEDED) << result->message();
  ASSERT_EQ(Holder("dev"), "replica-a");
  if (!StartNamespacedReplica("replica-b", "1s")) GTEST_SKIP() << "no PID namespaces here (unshare --pid failed)";
  ASSERT_FALSE(HasFailure());
  // Several drift passes of both.
  absl::SleepFor(absl::Seconds(5));
  EXPECT_EQ(Starts(), 1) << "a replica healed a process it could not see\n" << ReadFile(namespaced_log_);
  EXPECT_EQ(Count("SELECT count(*) FROM deployer.drift_events"), 0) << ReadFile(namespaced_log_);
  EXPECT_EQ(Count("SELECT count(*) FROM deployer.deployments"), 1);
  EXPECT_EQ(Holder("dev"), "replica-a");
  // Real drift is still healed, once, by the holder.
  std::vector<host::Instance> live = host::HostTarget(root_).processes().LiveInstances("web-app", "web");
  ASSERT_EQ(live.size(), 1u);
  ASSERT_EQ(kill(live[0].identity.pid, SIGKILL), 0);
  EXPECT_TRUE(WaitFor([&] { return Starts() == 2 && ServedVersions() == std::vector<std::string>{"v1"}; },
                      absl::Seconds(20)))
      << Logs();
  absl::SleepFor(absl::Seconds(3));
  EXPECT_EQ(Starts(), 2) << ReadFile(namespaced_log_);
  // plan-1 and one SELF_HEAL deployment.
  EXPECT_EQ(Count("SELECT count(*) FROM deployer.deployments"), 2);
}

}  // namespace
}  // namespace ferry::deployer
