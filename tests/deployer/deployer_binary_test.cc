// ferry-deployer as users run it: the real binary against a real PostgreSQL,
// fed by an in-process fake planner over gRPC, deploying real processes.
// Includes the crash test: SIGKILL in the middle of a rollout.

#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "common/concurrency/mutex.h"
#include "common/outbox/postgres_outbox_store.h"
#include "ferry/v1/deployer.grpc.pb.h"
#include "ferry/v1/planner.grpc.pb.h"
#include "services/deployer/host/health_probe.h"
#include "services/deployer/host/host_target.h"
#include "services/deployer/postgres_deployment_store.h"
#include "tests/deployer/fake_planner_service.h"
#include "tests/deployer/test_util.h"
#include "tests/support/service_process.h"
#include "tests/support/test_database.h"

namespace ferry::deployer {
namespace {

using testing::MakePlan;
using testing::PlanOptions;
using testing::FakePlanner;
using testing::ServerProcess;

class DeployerBinaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = ferry::testing::MakeTempDir("deployer-binary");
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &planner_port_);
    builder.RegisterService(&planner_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(planner_port_, 0);
  }
  void TearDown() override {
    deployer_.reset();
    planner_.Shutdown();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    testing::KillAllUnder(root_);
    EXPECT_EQ(testing::CountProcessesUnder(root_), 0) << "processes left behind";
  }
  void StartDeployer() {
    auto d = ferry::testing::ServiceProcess::Start(
        "ferry-deployer", {"--database-url=" + db_.url(), absl::StrCat("--planner-address=127.0.0.1:", planner_port_),
                           "--audit-address=127.0.0.1:1", "--drift-interval=1h", "--deployer-id=replica-a"});
    ASSERT_TRUE(d.ok()) << d.status();
    deployer_ = std::move(*d);
  }
  PlanOptions Opts(char sha) {
    PlanOptions o;
    o.root = root_;
    o.sha = std::string(40, sha);
    o.health_timeout = absl::Seconds(30);
    return o;
  }
  // Runs the deployer binary with the test failpoint
  // FERRY_TEST_CRASH_AFTER_STEP=`crash_after` until it kills itself
  // (SIGKILL) or `done()` holds (then stops it with SIGTERM). Returns true
  // when it was killed.
  template <typename Done>
  bool RunUntilKilledOr(int crash_after, Done done) {
    std::string log = ferry::testing::MakeTempDir("deployer-crash") + "/deployer.log";
    std::vector<std::string> args = {ferry::testing::BinaryPath("ferry-deployer"),
                                     "--database-url=" + db_.url(),
                                     absl::StrCat("--planner-address=127.0.0.1:", planner_port_),
                                     "--audit-address=127.0.0.1:1",
                                     "--drift-interval=1h",
                                     "--deployer-id=replica-a",
                                     "--grpc-address=127.0.0.1:0",
                                     "--metrics-address=127.0.0.1:0",
                                     "--insecure-plaintext",
                                     "--insecure-no-auth"};
    // As root (CI), the workloads run as the test's uid (as ServiceProcess does).
    if (geteuid() == 0) args.push_back("--insecure-workloads-as-root");
    std::string env = absl::StrCat("FERRY_TEST_CRASH_AFTER_STEP=", crash_after);
    pid_t pid = fork();
    if (pid == 0) {
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      putenv(env.data());
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    int status = 0;
    while (absl::Now() < deadline) {
      if (waitpid(pid, &status, WNOHANG) == pid) {
        std::ifstream in(log);
        std::stringstream text;
        text << in.rdbuf();
        EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
            << "the deployer ended other than by the failpoint (status " << status << "):\n" << text.str();
        return true;
      }
      if (done()) {
        kill(pid, SIGTERM);
        waitpid(pid, &status, 0);
        return false;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    ADD_FAILURE() << "the deployer neither died nor finished in time";
    return false;
  }
  std::vector<host::Instance> Instances() { return host::HostTarget(root_).processes().LiveInstances("web-app", "web"); }
  std::vector<std::string> ServedVersions() {
    std::vector<std::string> out;
    for (const host::Instance& i : Instances()) {
      httplib::Client c("127.0.0.1", i.ports.at("http"));
      auto res = c.Get("/");
      out.push_back(res && res->status == 200 ? res->body : "down");
    }
    return out;
  }

  ferry::testing::TestDatabase db_;
  std::string root_;
  FakePlanner planner_;
  int planner_port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<ferry::testing::ServiceProcess> deployer_;
};

TEST_F(DeployerBinaryTest, KilledMidRolloutIsResumedToTheNewRevisionAndRecordsWhatHappened) {
  StartDeployer();
  planner_.Release(MakePlan("plan-1", {ServerProcess("web", "v1", 2)}, Opts('1')));
  auto r1 = planner_.ResultFor("plan-1", absl::Seconds(60));
  ASSERT_TRUE(r1.has_value()) << deployer_->Log();
  ASSERT_EQ(r1->state(), v1::PLAN_STATE_SUCCEEDED) << r1->message();

  // v2's instances take 2 s to listen: kill -9 the deployer while the first
  // one comes up.
  planner_.Release(MakePlan("plan-2", {ServerProcess("web", "v2", 2, {{"START_DELAY", "2"}})}, Opts('2')));
  for (int i = 0; i < 500 && Instances().size() < 3; ++i) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_EQ(Instances().size(), 3u) << "v2 never started";
  deployer_->Kill();

  auto pool = db_.Pool(2);
  outbox::PostgresOutboxStore outbox(pool.get(), "deployer", "deployer");
  PostgresDeploymentStore store(pool.get(), &outbox);
  absl::StatusOr<v1::Deployment> left = store.Get("dep-plan-2", false);
  ASSERT_TRUE(left.ok()) << left.status();
  EXPECT_EQ(left->state(), v1::DEPLOYMENT_STATE_RUNNING);

  StartDeployer();
  auto r2 = planner_.ResultFor("plan-2", absl::Seconds(60));
  ASSERT_TRUE(r2.has_value()) << deployer_->Log();
  absl::StatusOr<v1::Deployment> d = store.Get("dep-plan-2", true);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->recovered());
  // A restart is not a verdict: the rollout is resumed and finished on v2,
  // neither rolled back nor pinned.
  EXPECT_EQ(d->state(), v1::DEPLOYMENT_STATE_SUCCEEDED) << d->message();
  EXPECT_EQ(r2->state(), v1::PLAN_STATE_SUCCEEDED) << r2->message();
  EXPECT_EQ(r2->live_revision().sha(), std::string(40, '2'));
  bool recovery_step = false;
  for (const auto& s : d->steps()) {
    if (s.kind() == v1::STEP_KIND_RECOVERY) {
      recovery_step = true;
      EXPECT_NE(s.message().find("resuming"), std::string::npos) << s.message();
    }
    EXPECT_NE(s.result(), v1::STEP_RESULT_RUNNING) << "a step stayed RUNNING: " << s.DebugString();
  }
  EXPECT_TRUE(recovery_step);
  EXPECT_EQ(d->deployer_id(), "replica-a");
  EXPECT_FALSE(store.GetPin("web-app", "dev")->pinned());
  // One revision, healthy: both instances serve v2; nothing is left running.
  EXPECT_EQ(ServedVersions(), (std::vector<std::string>{"v2", "v2"}));
  absl::StatusOr<std::vector<v1::Deployment>> unfinished = store.Unfinished();
  ASSERT_TRUE(unfinished.ok());
  EXPECT_TRUE(unfinished->empty());
  absl::StatusOr<int> code = deployer_->Stop();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  // Processes outlive the deployer.
  EXPECT_EQ(ServedVersions(), (std::vector<std::string>{"v2", "v2"}));
}

// The real process killed (SIGKILL, by the test failpoint) at every step
// boundary of a multi-wave rollout with a prune: alternately right after a
// step is recorded as started (before it acts) and right after it is
// recorded as finished. Each restart resumes it; it ends on the new
// revision, healthy, unpinned, with every step recorded and audited.
TEST_F(DeployerBinaryTest, KilledAtEveryStepBoundaryTheRolloutStillEndsOnTheNewRevision) {
  auto objects = [&](const std::string& v) {
    nlohmann::json conf = testing::ConfigFile("conf", "app.conf", "version=" + v + "\n");
    nlohmann::json web = ServerProcess("web", v, 1);
    web["metadata"]["annotations"]["ferry.dev/sync-wave"] = "1";
    std::vector<nlohmann::json> out = {conf, web};
    nlohmann::json extra = testing::ConfigFile(v == "v1" ? "old" : "extra", v == "v1" ? "old.conf" : "extra.conf", v);
    extra["metadata"]["annotations"]["ferry.dev/sync-wave"] = v == "v1" ? "1" : "2";
    out.push_back(extra);
    return out;
  };
  StartDeployer();
  planner_.Release(MakePlan("plan-1", objects("v1"), Opts('1')));
  auto r1 = planner_.ResultFor("plan-1", absl::Seconds(60));
  ASSERT_TRUE(r1.has_value()) << deployer_->Log();
  ASSERT_EQ(r1->state(), v1::PLAN_STATE_SUCCEEDED) << r1->message();
  ASSERT_TRUE(deployer_->Stop().ok());
  deployer_.reset();

  auto pool = db_.Pool(2);
  outbox::PostgresOutboxStore outbox(pool.get(), "deployer", "deployer");
  PostgresDeploymentStore store(pool.get(), &outbox);
  auto state = [&] {
    absl::StatusOr<v1::Deployment> d = store.Get("dep-plan-2", false);
    return d.ok() ? d->state() : v1::DEPLOYMENT_STATE_UNSPECIFIED;
  };
  planner_.Release(MakePlan("plan-2", objects("v2"), Opts('2')));
  int kills = 0;
  for (int run = 0; run < 40; ++run) {
    // 1: dies right after the next step is recorded as started; 2: right
    // after that step is recorded as finished too.
    bool killed = RunUntilKilledOr(run % 2 == 0 ? 1 : 2, [&] {
      return state() == v1::DEPLOYMENT_STATE_SUCCEEDED && planner_.ResultFor("plan-2", absl::ZeroDuration()).has_value();
    });
    if (!killed) break;
    ++kills;
  }
  ASSERT_FALSE(HasFailure());
  std::cout << "deployer killed " << kills << " times at step boundaries" << std::endl;
  // Steps: apply conf, health, apply web, health, apply extra, health, prune old: two kills each.
  EXPECT_GE(kills, 12);

  absl::StatusOr<v1::Deployment> d = store.Get("dep-plan-2", true);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->state(), v1::DEPLOYMENT_STATE_SUCCEEDED) << d->message();
  EXPECT_TRUE(d->recovered());
  auto r2 = planner_.ResultFor("plan-2", absl::Seconds(1));
  ASSERT_TRUE(r2.has_value());
  EXPECT_EQ(r2->state(), v1::PLAN_STATE_SUCCEEDED) << r2->message();
  EXPECT_EQ(r2->live_revision().sha(), std::string(40, '2'));
  EXPECT_FALSE(store.GetPin("web-app", "dev")->pinned());
  absl::StatusOr<DeploymentPage> all = store.List(DeploymentFilter{});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->deployments.size(), 2u) << "a rollback was made";
  std::set<int64_t> sequences;
  for (const auto& s : d->steps()) {
    EXPECT_NE(s.result(), v1::STEP_RESULT_RUNNING) << s.DebugString();
    EXPECT_NE(s.result(), v1::STEP_RESULT_FAILED) << s.DebugString();
    sequences.insert(s.sequence());
  }
  // Every step audited (in the outbox: the audit service is not running).
  absl::StatusOr<std::vector<outbox::PendingEvent>> events = outbox.FetchUnsent(100000);
  ASSERT_TRUE(events.ok());
  std::set<int64_t> audited;
  for (const auto& e : *events) {
    EXPECT_NE(e.event.action(), v1::AUDIT_ACTION_DEPLOYMENT_FAILED) << e.event.message();
    EXPECT_NE(e.event.action(), v1::AUDIT_ACTION_PINNED) << e.event.message();
    const std::string prefix = "deployment/dep-plan-2/step/";
    if (e.event.idempotency_key().rfind(prefix, 0) == 0) audited.insert(std::stoll(e.event.idempotency_key().substr(prefix.size())));
  }
  EXPECT_EQ(audited, sequences);
  // The new revision is what runs; the pruned file is gone.
  EXPECT_EQ(ServedVersions(), (std::vector<std::string>{"v2"}));
  std::ifstream conf(root_ + "/app.conf");
  std::stringstream content;
  content << conf.rdbuf();
  EXPECT_EQ(content.str(), "version=v2\n");
  EXPECT_FALSE(std::ifstream(root_ + "/old.conf").good());
  EXPECT_TRUE(std::ifstream(root_ + "/extra.conf").good());
}

// The real binary as root with neither runAs nor --workload-user: the
// deployment fails naming runAs and the flags, and nothing runs. The same
// application with the environment's runAs deploys, running as that uid.
TEST_F(DeployerBinaryTest, ARootDeployerRefusesAnEnvironmentWithoutRunAsAndRunsOneWithItAsItsUser) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root: only a root deployer refuses, and switching to runAs needs root";
  auto d = ferry::testing::ServiceProcess::Start(
      "ferry-deployer", {"--database-url=" + db_.url(), absl::StrCat("--planner-address=127.0.0.1:", planner_port_),
                         "--audit-address=127.0.0.1:1", "--drift-interval=1h", "--deployer-id=replica-a",
                         "--insecure-workloads-as-root=false"});
  ASSERT_TRUE(d.ok()) << d.status();
  deployer_ = std::move(*d);
  planner_.Release(MakePlan("plan-1", {ServerProcess("web", "v1", 1)}, Opts('1')));
  auto r1 = planner_.ResultFor("plan-1", absl::Seconds(60));
  ASSERT_TRUE(r1.has_value()) << deployer_->Log();
  EXPECT_EQ(r1->state(), v1::PLAN_STATE_FAILED);
  EXPECT_NE(r1->message().find("target.host.run_as"), std::string::npos) << r1->message();
  EXPECT_NE(r1->message().find("--workload-user"), std::string::npos) << r1->message();
  EXPECT_TRUE(Instances().empty());
  std::filesystem::permissions(root_, std::filesystem::perms::owner_all | std::filesystem::perms::others_read |
                                          std::filesystem::perms::others_exec);
  v1::Plan p2 = MakePlan("plan-2", {ServerProcess("web", "v1", 1)}, Opts('2'));
  p2.mutable_target()->mutable_host()->mutable_run_as()->set_user("nobody");
  planner_.Release(p2);
  auto r2 = planner_.ResultFor("plan-2", absl::Seconds(60));
  ASSERT_TRUE(r2.has_value()) << deployer_->Log();
  EXPECT_EQ(r2->state(), v1::PLAN_STATE_SUCCEEDED) << r2->message();
  std::vector<host::Instance> live = Instances();
  ASSERT_EQ(live.size(), 1u);
  std::ifstream status(absl::StrCat("/proc/", live[0].identity.pid, "/status"));
  std::string line, uid;
  while (std::getline(status, line)) {
    if (line.rfind("Uid:", 0) == 0) uid = line;
  }
  EXPECT_EQ(uid, "Uid:\t65534\t65534\t65534\t65534");
  EXPECT_EQ(ServedVersions(), (std::vector<std::string>{"v1"}));
}

TEST_F(DeployerBinaryTest, WatchDeploymentStreamsStepsLiveAndLiveStateIsServed) {
  StartDeployer();
  planner_.Release(MakePlan("plan-1", {ServerProcess("web", "v1", 1, {{"START_DELAY", "1"}}),
                                       testing::ConfigFile("conf", "app.conf", "a=1\n")},
                            Opts('1')));
  auto channel = grpc::CreateChannel(deployer_->grpc_target(), grpc::InsecureChannelCredentials());
  auto stub = v1::Deployer::NewStub(channel);
  // Wait for the deployment to be recorded, then watch it.
  for (int i = 0; i < 300; ++i) {
    grpc::ClientContext ctx;
    v1::GetDeploymentRequest req;
    req.set_deployment_id("dep-plan-1");
    v1::Deployment d;
    if (stub->GetDeployment(&ctx, req, &d).ok()) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  grpc::ClientContext ctx;
  v1::WatchDeploymentRequest req;
  req.set_deployment_id("dep-plan-1");
  auto reader = stub->WatchDeployment(&ctx, req);
  v1::WatchDeploymentResponse ev;
  int steps = 0;
  v1::DeploymentState last = v1::DEPLOYMENT_STATE_UNSPECIFIED;
  bool first = true;
  while (reader->Read(&ev)) {
    if (first) {
      EXPECT_TRUE(ev.has_deployment()) << "the stream starts with a snapshot";
      first = false;
    }
    if (ev.has_step()) ++steps;
    if (ev.has_deployment()) last = ev.deployment().state();
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(last, v1::DEPLOYMENT_STATE_SUCCEEDED);
  EXPECT_GT(steps, 0) << "no step arrived live";

  grpc::ClientContext lctx;
  v1::GetLiveStateRequest lreq;
  lreq.set_application_id("web-app");
  lreq.set_environment_id("dev");
  v1::LiveState live;
  ASSERT_TRUE(stub->GetLiveState(&lctx, lreq, &live).ok());
  EXPECT_EQ(live.health(), v1::HEALTH_STATUS_HEALTHY);
  EXPECT_EQ(live.sync_status(), v1::SYNC_STATUS_SYNCED);
  EXPECT_EQ(live.objects_size(), 2);
  EXPECT_EQ(live.deployment_id(), "dep-plan-1");

  httplib::Client metrics("127.0.0.1", deployer_->metrics_port());
  auto res = metrics.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_NE(res->body.find("ferry_deployments_total{application=\"web-app\",environment=\"dev\",result=\"succeeded\"} 1"), std::string::npos) << res->body;
  EXPECT_NE(res->body.find("ferry_deployment_duration_seconds_count"), std::string::npos);
  EXPECT_NE(res->body.find("ferry_health_checks_total{result=\"healthy\"}"), std::string::npos);
  EXPECT_NE(res->body.find("ferry_drift_events_total"), std::string::npos);
  absl::StatusOr<int> code = deployer_->Stop();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
}


TEST_F(DeployerBinaryTest, APlanNotTakenIsRetriedAndTheSavedCursorMovesOnlyAfterIt) {
  StartDeployer();
  planner_.FailNextAck();
  planner_.Release(MakePlan("plan-1", {testing::ConfigFile("conf", "app.conf", "a=1\n")}, Opts('1')));
  auto r1 = planner_.ResultFor("plan-1", absl::Seconds(60));
  ASSERT_TRUE(r1.has_value()) << deployer_->Log();
  EXPECT_EQ(r1->state(), v1::PLAN_STATE_SUCCEEDED);
  EXPECT_NE(deployer_->Log().find("plan not taken; retrying"), std::string::npos) << deployer_->Log();
  EXPECT_EQ(planner_.AcksFor("plan-1"), 1);
  // Later plans continue from the saved cursor, across a restart.
  ASSERT_TRUE(deployer_->Stop().ok());
  StartDeployer();
  planner_.Release(MakePlan("plan-2", {testing::ConfigFile("conf", "app.conf", "a=2\n")}, Opts('2')));
  auto r2 = planner_.ResultFor("plan-2", absl::Seconds(60));
  ASSERT_TRUE(r2.has_value()) << deployer_->Log();
  EXPECT_EQ(planner_.AcksFor("plan-1"), 1) << "plan-1 was taken twice";
}

}  // namespace
}  // namespace ferry::deployer
