// Deployer logic against a real PostgreSQL, the real host target and real
// processes; the planner is a fake at the PlanSource seam.

#include "services/deployer/deployer.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/outbox/postgres_outbox_store.h"
#include "common/postgres/migrator.h"
#include "deployer_migrations.h"
#include "services/deployer/host/health_probe.h"
#include "services/deployer/host/host_target.h"
#include "services/deployer/postgres_deployment_store.h"
#include "tests/deployer/deploy_and_wait.h"
#include "tests/deployer/test_util.h"
#include "tests/support/test_database.h"

namespace ferry::deployer {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ConfigFile;
using testing::MakePlan;
using testing::PlanOptions;
using testing::ServerProcess;

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Sha(char c) { return std::string(40, c); }

class DeployerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pool_ = db_.Pool(8);
    ASSERT_TRUE(postgres::Migrate(*pool_, DeployerMigrations()).ok());
    outbox_ = std::make_unique<outbox::PostgresOutboxStore>(pool_.get(), "deployer", "deployer");
    store_ = std::make_unique<PostgresDeploymentStore>(pool_.get(), outbox_.get());
    root_ = ferry::testing::MakeTempDir("deployer-test");
    metrics_ = std::make_unique<DeployerMetrics>(registry_);
    options_.deployer_id = "test";
    options_.runner.health_poll = absl::Milliseconds(50);
    options_.drift_interval = absl::Seconds(1);
    deployer_ = MakeDeployer();
  }
  void TearDown() override {
    if (deployer_) deployer_->Stop();
    testing::KillAllUnder(root_);
    EXPECT_EQ(testing::CountProcessesUnder(root_), 0) << "processes left behind";
  }
  std::unique_ptr<Deployer> MakeDeployer() {
    return std::make_unique<Deployer>(store_.get(), &targets_, &plans_, &notifier_, metrics_.get(), &clock_, options_);
  }
  PlanOptions Opts(char sha) {
    PlanOptions o;
    o.root = root_;
    o.sha = Sha(sha);
    return o;
  }
  // Handles the plan and waits for its deployment (and any rollback).
  v1::Deployment Deploy(const v1::Plan& plan) {
    return testing::DeployAndWait(*deployer_, *store_, plan);
  }
  host::HostTarget& Host() {
    v1::DeployTarget t;
    t.set_kind(v1::TARGET_KIND_HOST);
    t.mutable_host()->set_root_dir(root_);
    return *static_cast<host::HostTarget*>(*targets_.For(t));
  }
  std::vector<std::string> ServedVersions() {
    std::vector<std::string> out;
    for (const host::Instance& i : Host().processes().LiveInstances("web-app", "web")) {
      host::ProbeResult r = host::ProbeHttp(i.ports.at("http"), "/", 200, absl::Seconds(1));
      out.push_back(r.ok ? i.spec["env"][0].value("value", "") : "down");
    }
    return out;
  }
  std::vector<v1::AuditAction> AuditActions() {
    std::vector<v1::AuditAction> out;
    absl::StatusOr<std::vector<outbox::PendingEvent>> events = outbox_->FetchUnsent(100000);
    EXPECT_TRUE(events.ok());
    for (const auto& e : *events) out.push_back(e.event.action());
    return out;
  }
  int CountAction(v1::AuditAction a) {
    std::vector<v1::AuditAction> all = AuditActions();
    return static_cast<int>(std::count(all.begin(), all.end(), a));
  }

  ferry::testing::TestDatabase db_;
  std::unique_ptr<postgres::ConnectionPool> pool_;
  std::unique_ptr<outbox::PostgresOutboxStore> outbox_;
  std::unique_ptr<PostgresDeploymentStore> store_;
  // As root (CI), workloads run as the test's uid, as before runAs.
  host::HostTargetFactory targets_{host::RootPolicy(), host::WorkloadPolicy(testing::WorkloadsAsTheTestsUid())};
  testing::FakePlanSource plans_;
  DeploymentNotifier notifier_;
  prometheus::Registry registry_;
  std::unique_ptr<DeployerMetrics> metrics_;
  SystemClock clock_;
  DeployerOptions options_;
  std::string root_;
  std::unique_ptr<Deployer> deployer_;
};

TEST_F(DeployerTest, RolloutV1ToV2WithTwoReplicasKeepsAHealthyInstanceServingThroughout) {
  v1::Deployment d1 = Deploy(MakePlan("p1", {ServerProcess("web", "v1", 2)}, Opts('1')));
  ASSERT_EQ(d1.state(), v1::DEPLOYMENT_STATE_SUCCEEDED) << d1.message();
  EXPECT_EQ(ServedVersions(), (std::vector<std::string>{"v1", "v1"}));

  std::atomic<bool> done{false};
  std::atomic<int> min_serving{100};
  std::atomic<int> samples{0};
  std::thread sampler([&] {
    while (!done) {
      int serving = 0;
      for (const host::Instance& i : Host().processes().LiveInstances("web-app", "web")) {
        if (host::ProbeHttp(i.ports.at("http"), "/", 200, absl::Milliseconds(500)).ok) ++serving;
      }
      min_serving = std::min(min_serving.load(), serving);
      ++samples;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  v1::Deployment d2 = Deploy(MakePlan("p2", {ServerProcess("web", "v2", 2)}, Opts('2')));
  done = true;
  sampler.join();
  ASSERT_EQ(d2.state(), v1::DEPLOYMENT_STATE_SUCCEEDED) << d2.message();
  EXPECT_GE(min_serving.load(), 1) << "no instance served at some point during the rollout";
  // Enough samples to have seen the rollout (a fast one took 10 at 5 ms).
  EXPECT_GE(samples.load(), 5);
  EXPECT_EQ(ServedVersions(), (std::vector<std::string>{"v2", "v2"}));
  // Steps were recorded before and after: apply, then the wave's health gate.
  ASSERT_GE(d2.steps_size(), 2);
  EXPECT_EQ(d2.steps(0).kind(), v1::STEP_KIND_APPLY);
  EXPECT_EQ(d2.steps(0).action(), v1::OBJECT_ACTION_UPDATE);
  EXPECT_EQ(d2.steps(0).result(), v1::STEP_RESULT_SUCCEEDED);
  EXPECT_TRUE(d2.steps(0).has_end_time());
  EXPECT_EQ(d2.steps(1).kind(), v1::STEP_KIND_HEALTH_CHECK);
  EXPECT_EQ(d2.previous_revision().sha(), "");
  ASSERT_EQ(plans_.results().size(), 2u);
  EXPECT_EQ(plans_.results()[1].state(), v1::PLAN_STATE_SUCCEEDED);
  EXPECT_EQ(plans_.acks().size(), 2u);
  EXPECT_EQ(CountAction(v1::AUDIT_ACTION_DEPLOYMENT_STARTED), 2);
  EXPECT_EQ(CountAction(v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED), 2);
  EXPECT_GE(CountAction(v1::AUDIT_ACTION_DEPLOYMENT_STEP), 4);
}

TEST_F(DeployerTest, FailingHealthCheckRollsBackToLastGoodAndIsNotRetried) {
  ASSERT_EQ(Deploy(MakePlan("p2", {ServerProcess("web", "v2", 2), ConfigFile("conf", "app.conf", "v2\n")}, Opts('2')))
                .state(),
            v1::DEPLOYMENT_STATE_SUCCEEDED);
  PlanOptions o3 = Opts('3');
  o3.health_timeout = absl::Seconds(3);
  v1::Plan p3 = MakePlan("p3", {ServerProcess("web", "v3", 2, {{"HEALTHY", "0"}}), ConfigFile("conf", "app.conf", "v3\n")},
                         o3);
  v1::Deployment d3 = Deploy(p3);
  EXPECT_EQ(d3.state(), v1::DEPLOYMENT_STATE_ROLLED_BACK) << d3.message();
  EXPECT_NE(d3.message().find("not healthy"), std::string::npos) << d3.message();
  ASSERT_FALSE(d3.rolled_back_by_deployment_id().empty());
  absl::StatusOr<v1::Deployment> rb = store_->Get(d3.rolled_back_by_deployment_id(), true);
  ASSERT_TRUE(rb.ok());
  EXPECT_EQ(rb->kind(), v1::DEPLOYMENT_KIND_AUTO_ROLLBACK);
  EXPECT_EQ(rb->state(), v1::DEPLOYMENT_STATE_SUCCEEDED) << rb->message();
  EXPECT_EQ(rb->rollback_of_deployment_id(), d3.id());
  EXPECT_EQ(rb->revision().sha(), Sha('2'));
  EXPECT_EQ(ServedVersions(), (std::vector<std::string>{"v2", "v2"}));
  EXPECT_EQ(Read(root_ + "/app.conf"), "v2\n");
  ASSERT_EQ(plans_.results().size(), 2u);
  EXPECT_EQ(plans_.results()[1].state(), v1::PLAN_STATE_ROLLED_BACK);
  EXPECT_EQ(plans_.results()[1].live_revision().sha(), Sha('2'));
  absl::StatusOr<v1::PinState> pin = store_->GetPin("web-app", "dev");
  ASSERT_TRUE(pin.ok());
  EXPECT_TRUE(pin->pinned());
  EXPECT_EQ(pin->sha(), Sha('2'));
  EXPECT_EQ(CountAction(v1::AUDIT_ACTION_DEPLOYMENT_ROLLED_BACK), 1);
  EXPECT_EQ(CountAction(v1::AUDIT_ACTION_PINNED), 1);

  // Not retried: the same plan redelivered, and a new automatic plan for the
  // same revision, are both left alone.
  size_t acks = plans_.acks().size();
  EXPECT_EQ(Deploy(p3).id(), d3.id());
  v1::Plan again = MakePlan("p3-again", {ServerProcess("web", "v3", 2, {{"HEALTHY", "0"}})}, o3);
  EXPECT_EQ(*deployer_->HandlePlan(again), "");
  EXPECT_EQ(plans_.acks().size(), acks);
  absl::StatusOr<DeploymentPage> all = store_->List(DeploymentFilter{});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->deployments.size(), 3u);  // p2, p3 and the rollback.

  // A plan approved by a person moves the pinned application forward.
  PlanOptions o4 = Opts('4');
  o4.automatic = false;
  v1::Deployment d4 = Deploy(MakePlan("p4", {ServerProcess("web", "v4", 2), ConfigFile("conf", "app.conf", "v4\n")}, o4));
  EXPECT_EQ(d4.state(), v1::DEPLOYMENT_STATE_SUCCEEDED) << d4.message();
  EXPECT_FALSE(store_->GetPin("web-app", "dev")->pinned());
  EXPECT_EQ(CountAction(v1::AUDIT_ACTION_UNPINNED), 1);
}

TEST_F(DeployerTest, UnknownKindIsRefusedBeforeAnythingChanges) {
  json deployment = {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"metadata", {{"name", "api"}}}, {"spec", json::object()}};
  v1::Deployment d = Deploy(MakePlan("p1", {ConfigFile("conf", "app.conf", "x\n"), deployment}, Opts('1')));
  EXPECT_EQ(d.state(), v1::DEPLOYMENT_STATE_FAILED);
  EXPECT_NE(d.message().find("apps/web/api.yaml"), std::string::npos) << d.message();
  EXPECT_NE(d.message().find("Deployment"), std::string::npos) << d.message();
  EXPECT_EQ(d.steps_size(), 0);
  EXPECT_FALSE(fs::exists(root_ + "/app.conf"));
  EXPECT_EQ(CountAction(v1::AUDIT_ACTION_DEPLOYMENT_FAILED), 1);
  ASSERT_EQ(plans_.results().size(), 1u);
  EXPECT_EQ(plans_.results()[0].state(), v1::PLAN_STATE_FAILED);

  v1::Deployment escape = Deploy(MakePlan("p2", {ConfigFile("conf", "../../etc/evil", "x\n")}, Opts('2')));
  EXPECT_EQ(escape.state(), v1::DEPLOYMENT_STATE_FAILED);
  EXPECT_NE(escape.message().find("spec.path"), std::string::npos) << escape.message();
}

TEST_F(DeployerTest, KilledProcessAndEditedFileAreDetectedAndHealedWithSelfHeal) {
  PlanOptions o = Opts('1');
  o.self_heal = true;
  json web = ServerProcess("web", "v1", 1);
  web["spec"]["restartPolicy"] = "Never";
  ASSERT_EQ(Deploy(MakePlan("p1", {web, ConfigFile("conf", "app.conf", "v1\n")}, o)).state(),
            v1::DEPLOYMENT_STATE_SUCCEEDED);
  std::vector<host::Instance> inst = Host().processes().LiveInstances("web-app", "web");
  ASSERT_EQ(inst.size(), 1u);
  kill(inst[0].identity.pid, SIGKILL);
  std::ofstream(root_ + "/app.conf") << "edited by hand\n";
  for (int i = 0; i < 50 && host::IsAlive(inst[0].identity); ++i) absl::SleepFor(absl::Milliseconds(20));

  v1::GetLiveStateRequest req;
  req.set_application_id("web-app");
  req.set_environment_id("dev");
  absl::StatusOr<v1::LiveState> live = deployer_->GetLiveState(req);
  ASSERT_TRUE(live.ok()) << live.status();
  EXPECT_EQ(live->sync_status(), v1::SYNC_STATUS_OUT_OF_SYNC);
  ASSERT_EQ(live->objects_size(), 2);
  for (const v1::LiveObject& obj : live->objects()) EXPECT_NE(obj.drift(), v1::DRIFT_STATUS_IN_SYNC) << obj.object().kind();

  deployer_->DriftPass(/*force=*/true);
  deployer_->WaitIdle();  // Heals run on scheduler workers.
  EXPECT_EQ(CountAction(v1::AUDIT_ACTION_DRIFT_DETECTED), 2);
  EXPECT_EQ(CountAction(v1::AUDIT_ACTION_DRIFT_HEALED), 2);
  EXPECT_EQ(Read(root_ + "/app.conf"), "v1\n");
  EXPECT_EQ(ServedVersions(), (std::vector<std::string>{"v1"}));
  absl::StatusOr<DeploymentPage> page = store_->List(DeploymentFilter{});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->deployments.size(), 2u);
  EXPECT_EQ(page->deployments[0].kind(), v1::DEPLOYMENT_KIND_SELF_HEAL);
  EXPECT_EQ(page->deployments[0].state(), v1::DEPLOYMENT_STATE_SUCCEEDED);
  live = deployer_->GetLiveState(req);
  ASSERT_TRUE(live.ok());
  EXPECT_EQ(live->sync_status(), v1::SYNC_STATUS_SYNCED);
  EXPECT_EQ(live->health(), v1::HEALTH_STATUS_HEALTHY);
  EXPECT_EQ(live->revision().sha(), Sha('1'));
  // Metrics counted the drift.
  bool found = false;
  for (const auto& family : registry_.Collect()) {
    if (family.name == "ferry_drift_events_total") {
      found = true;
      EXPECT_EQ(family.metric.at(0).counter.value, 2);
    }
  }
  EXPECT_TRUE(found);
}

TEST_F(DeployerTest, DriftWithoutSelfHealIsRecordedOnceAndLeftAlone) {
  json web = ServerProcess("web", "v1", 1);
  web["spec"]["restartPolicy"] = "Never";
  ASSERT_EQ(Deploy(MakePlan("p1", {web, ConfigFile("conf", "app.conf", "v1\n")}, Opts('1'))).state(),
            v1::DEPLOYMENT_STATE_SUCCEEDED);
  std::ofstream(root_ + "/app.conf") << "edited\n";
  deployer_->DriftPass(true);
  deployer_->WaitIdle();  // Heals run on scheduler workers.
  deployer_->DriftPass(true);
  deployer_->WaitIdle();  // Heals run on scheduler workers.
  EXPECT_EQ(CountAction(v1::AUDIT_ACTION_DRIFT_DETECTED), 1);
  EXPECT_EQ(CountAction(v1::AUDIT_ACTION_DRIFT_HEALED), 0);
  EXPECT_EQ(Read(root_ + "/app.conf"), "edited\n");
  // A Process whose restart policy is Always is restarted even without selfHeal.
  json always = ServerProcess("web", "v1", 1);
  ASSERT_EQ(Deploy(MakePlan("p2", {always, ConfigFile("conf", "app.conf", "v1\n")}, Opts('2'))).state(),
            v1::DEPLOYMENT_STATE_SUCCEEDED);
  std::vector<host::Instance> inst = Host().processes().LiveInstances("web-app", "web");
  ASSERT_EQ(inst.size(), 1u);
  host::StopProcess(inst[0].identity, SIGKILL, absl::Seconds(5));
  deployer_->DriftPass(true);
  deployer_->WaitIdle();  // Heals run on scheduler workers.
  EXPECT_EQ(ServedVersions(), (std::vector<std::string>{"v1"}));
}

// A rollback the planner holds (a closed sync window) has no deployment
// yet; it is still pinned and audited, each with its own event (they all
// used to share the key "rollback//pinned", so the second one anywhere
// failed with ALREADY_EXISTS after its plan was made).
TEST_F(DeployerTest, RollbacksThePlannerHoldsArePinnedAndAuditedEachTime) {
  ASSERT_EQ(Deploy(MakePlan("p1", {ConfigFile("conf", "app.conf", "v1\n")}, Opts('1'))).state(),
            v1::DEPLOYMENT_STATE_SUCCEEDED);
  ASSERT_EQ(Deploy(MakePlan("p2", {ConfigFile("conf", "app.conf", "v2\n")}, Opts('2'))).state(),
            v1::DEPLOYMENT_STATE_SUCCEEDED);
  plans_.set_hold(true);
  v1::RollbackRequest req;
  req.set_application_id("web-app");
  req.set_environment_id("dev");
  req.mutable_actor()->set_id("alice");
  for (const char* plan : {"p-rb1", "p-rb2"}) {
    v1::Plan rollback_plan = MakePlan(plan, {ConfigFile("conf", "app.conf", "v1\n")}, Opts('1'));
    rollback_plan.set_trigger(v1::PLAN_TRIGGER_ROLLBACK);
    rollback_plan.set_rollback_to_deployment_id("dep-p1");
    plans_.set_revision_plan(rollback_plan);
    absl::StatusOr<v1::RollbackResponse> resp = deployer_->Rollback(req);
    ASSERT_TRUE(resp.ok()) << plan << ": " << resp.status();
    EXPECT_EQ(resp->plan_id(), plan);
    EXPECT_TRUE(resp->pin().pinned());
    EXPECT_FALSE(resp->has_deployment()) << "held: nothing runs yet";
  }
  EXPECT_EQ(CountAction(v1::AUDIT_ACTION_PINNED), 2);
  EXPECT_EQ(Read(root_ + "/app.conf"), "v2\n");
}

TEST_F(DeployerTest, ExplicitRollbackGoesThroughThePlannerAndPins) {
  ASSERT_EQ(Deploy(MakePlan("p1", {ConfigFile("conf", "app.conf", "v1\n")}, Opts('1'))).state(),
            v1::DEPLOYMENT_STATE_SUCCEEDED);
  ASSERT_EQ(Deploy(MakePlan("p2", {ConfigFile("conf", "app.conf", "v2\n")}, Opts('2'))).state(),
            v1::DEPLOYMENT_STATE_SUCCEEDED);
  v1::Plan rollback_plan = MakePlan("p-rb", {ConfigFile("conf", "app.conf", "v1\n")}, Opts('1'));
  rollback_plan.set_trigger(v1::PLAN_TRIGGER_ROLLBACK);
  rollback_plan.set_rollback_to_deployment_id("dep-p1");
  plans_.set_revision_plan(rollback_plan);
  v1::RollbackRequest req;
  req.set_application_id("web-app");
  req.set_environment_id("dev");
  req.mutable_actor()->set_id("alice");
  req.set_comment("v2 breaks checkout");
  absl::StatusOr<v1::RollbackResponse> resp = deployer_->Rollback(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  deployer_->WaitIdle();
  ASSERT_EQ(plans_.revisions().size(), 1u);
  EXPECT_EQ(plans_.revisions()[0].revision().sha(), Sha('1'));
  EXPECT_EQ(plans_.revisions()[0].trigger(), v1::PLAN_TRIGGER_ROLLBACK);
  EXPECT_EQ(plans_.revisions()[0].rollback_to_deployment_id(), "dep-p1");
  EXPECT_EQ(resp->plan_id(), "p-rb");
  EXPECT_TRUE(resp->pin().pinned());
  absl::StatusOr<v1::Deployment> d = store_->Get("dep-p-rb", false);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->kind(), v1::DEPLOYMENT_KIND_ROLLBACK);
  EXPECT_EQ(d->state(), v1::DEPLOYMENT_STATE_SUCCEEDED);
  EXPECT_EQ(Read(root_ + "/app.conf"), "v1\n");
  EXPECT_EQ(CountAction(v1::AUDIT_ACTION_PINNED), 1);
  // Pinned: an automatic plan does not move it; Unpin lets it.
  EXPECT_EQ(*deployer_->HandlePlan(MakePlan("p3", {ConfigFile("conf", "app.conf", "v3\n")}, Opts('3'))), "");
  EXPECT_EQ(Read(root_ + "/app.conf"), "v1\n");
  v1::UnpinRequest unpin;
  unpin.set_application_id("web-app");
  unpin.set_environment_id("dev");
  unpin.mutable_actor()->set_id("alice");
  ASSERT_TRUE(deployer_->Unpin(unpin).ok());
  EXPECT_EQ(CountAction(v1::AUDIT_ACTION_UNPINNED), 1);
  EXPECT_FALSE(store_->GetPin("web-app", "dev")->pinned());
  EXPECT_EQ(Deploy(MakePlan("p3", {ConfigFile("conf", "app.conf", "v3\n")}, Opts('3'))).state(),
            v1::DEPLOYMENT_STATE_SUCCEEDED);
  EXPECT_EQ(Read(root_ + "/app.conf"), "v3\n");
  // Errors name the field.
  req.clear_actor();
  EXPECT_EQ(deployer_->Rollback(req).status().code(), absl::StatusCode::kInvalidArgument);
  req.mutable_actor()->set_id("alice");
  req.set_deployment_id("dep-nope");
  EXPECT_EQ(deployer_->Rollback(req).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(DeployerTest, RollbackWithoutThePlannerRestoresStoredManifests) {
  ASSERT_EQ(Deploy(MakePlan("p1", {ConfigFile("conf", "app.conf", "v1\n")}, Opts('1'))).state(),
            v1::DEPLOYMENT_STATE_SUCCEEDED);
  ASSERT_EQ(Deploy(MakePlan("p2", {ConfigFile("conf", "app.conf", "v2\n")}, Opts('2'))).state(),
            v1::DEPLOYMENT_STATE_SUCCEEDED);
  v1::RollbackRequest req;
  req.set_application_id("web-app");
  req.set_environment_id("dev");
  req.mutable_actor()->set_id("bob");
  req.set_sha(Sha('1'));
  absl::StatusOr<v1::RollbackResponse> resp = deployer_->Rollback(req);  // The fake planner is "down".
  ASSERT_TRUE(resp.ok()) << resp.status();
  deployer_->WaitIdle();
  EXPECT_EQ(Read(root_ + "/app.conf"), "v1\n");
  absl::StatusOr<v1::Deployment> d = store_->Get(resp->deployment().id(), false);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->state(), v1::DEPLOYMENT_STATE_SUCCEEDED);
  EXPECT_EQ(d->restored_deployment_id(), "dep-p1");
  EXPECT_EQ(deployer_->Rollback(req).status().code(), absl::StatusCode::kFailedPrecondition) << "already live";
}

TEST_F(DeployerTest, OnlyOneHolderOfAnApplicationLockAcrossReplicas) {
  PostgresDeploymentStore other(pool_.get(), outbox_.get());
  absl::StatusOr<std::unique_ptr<AppLock>> a = store_->TryLock("web-app", "dev");
  ASSERT_TRUE(a.ok() && *a);
  absl::StatusOr<std::unique_ptr<AppLock>> b = other.TryLock("web-app", "dev");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, nullptr);
  absl::StatusOr<std::unique_ptr<AppLock>> c = other.TryLock("web-app", "prod");
  ASSERT_TRUE(c.ok() && *c);
  a->reset();
  b = other.TryLock("web-app", "dev");
  ASSERT_TRUE(b.ok());
  EXPECT_NE(*b, nullptr);
}

TEST_F(DeployerTest, AReleasedLockSessionIsReusedHoldingNothing) {
  PostgresDeploymentStore other(pool_.get(), outbox_.get());
  for (int round = 0; round < 3; ++round) {
    absl::StatusOr<std::unique_ptr<AppLock>> mine = store_->TryLock("web-app", "dev");
    ASSERT_TRUE(mine.ok() && *mine) << "round " << round;
    mine->reset();  // Its session goes back to the store's idle sessions.
    absl::StatusOr<std::unique_ptr<AppLock>> theirs = other.TryLock("web-app", "dev");
    ASSERT_TRUE(theirs.ok() && *theirs) << "the released session still holds the lock (round " << round << ")";
    // The store's reused session must not take it too (locks are re-entrant per session).
    absl::StatusOr<std::unique_ptr<AppLock>> again = store_->TryLock("web-app", "dev");
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, nullptr) << "round " << round;
  }
}

TEST_F(DeployerTest, InterruptedDeploymentIsResumedAndFinishedByTheNextDeployer) {
  ASSERT_EQ(Deploy(MakePlan("p1", {ServerProcess("web", "v1", 2)}, Opts('1'))).state(), v1::DEPLOYMENT_STATE_SUCCEEDED);
  // v2 starts slowly; stop the deployer while its first instance comes up.
  ASSERT_TRUE(deployer_->HandlePlan(MakePlan("p2", {ServerProcess("web", "v2", 2, {{"START_DELAY", "1"}})}, Opts('2'))).ok());
  for (int i = 0; i < 200 && Host().processes().LiveInstances("web-app", "web").size() < 3; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  deployer_->Stop();
  absl::StatusOr<v1::Deployment> left = store_->Get("dep-p2", false);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->state(), v1::DEPLOYMENT_STATE_RUNNING);

  deployer_ = MakeDeployer();
  deployer_->RecoverOrphans();
  deployer_->WaitIdle();
  absl::StatusOr<v1::Deployment> d = store_->Get("dep-p2", true);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->recovered());
  // A restart is not a verdict: resumed and finished, not rolled back or pinned.
  EXPECT_EQ(d->state(), v1::DEPLOYMENT_STATE_SUCCEEDED) << d->message();
  bool recovery_step = false;
  for (const auto& s : d->steps()) {
    if (s.kind() == v1::STEP_KIND_RECOVERY) {
      recovery_step = true;
      EXPECT_NE(s.message().find("resuming"), std::string::npos) << s.message();
    }
    EXPECT_NE(s.result(), v1::STEP_RESULT_RUNNING) << "a step stayed RUNNING";
    EXPECT_NE(s.result(), v1::STEP_RESULT_FAILED) << s.DebugString();
  }
  EXPECT_TRUE(recovery_step);
  EXPECT_EQ(ServedVersions(), (std::vector<std::string>{"v2", "v2"}));
  EXPECT_FALSE(store_->GetPin("web-app", "dev")->pinned());
  EXPECT_EQ(CountAction(v1::AUDIT_ACTION_DEPLOYMENT_ROLLED_BACK), 0);
  absl::StatusOr<std::vector<v1::Deployment>> unfinished = store_->Unfinished();
  ASSERT_TRUE(unfinished.ok());
  EXPECT_TRUE(unfinished->empty());
}

TEST_F(DeployerTest, RecoveryAttemptsAreStoredPerDeployment) {
  v1::Deployment d;
  d.set_id("dep-x");
  d.set_application_id("web-app");
  d.set_environment_id("dev");
  d.set_state(v1::DEPLOYMENT_STATE_RUNNING);
  ASSERT_TRUE(store_->Create(d, v1::Plan(), {}).ok());
  absl::StatusOr<RecoveryAttempts> none = store_->GetRecoveryAttempts("dep-x");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->without_progress, 0);
  EXPECT_EQ(none->progress_mark, 0);
  ASSERT_TRUE(store_->SaveRecoveryAttempts("dep-x", RecoveryAttempts{2, -1}).ok());
  absl::StatusOr<RecoveryAttempts> saved = store_->GetRecoveryAttempts("dep-x");
  ASSERT_TRUE(saved.ok());
  EXPECT_EQ(saved->without_progress, 2);
  EXPECT_EQ(saved->progress_mark, -1);
  EXPECT_EQ(store_->GetRecoveryAttempts("dep-none").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->SaveRecoveryAttempts("dep-none", RecoveryAttempts{}).code(), absl::StatusCode::kNotFound);
}

TEST_F(DeployerTest, DeploymentsBeyondTheLimitWaitAndAreNeverTakenForOrphansMeanwhile) {
  options_.max_concurrent_deployments = 1;
  options_.tick = absl::Milliseconds(5);  // orphan recovery runs all the time
  deployer_ = MakeDeployer();
  deployer_->Start();
  constexpr int kPlans = 8;
  std::vector<std::thread> intake;
  for (int i = 0; i < kPlans; ++i) {
    intake.emplace_back([&, i] {
      v1::Plan plan = MakePlan(absl::StrCat("p", i), {ConfigFile("conf", absl::StrCat("app", i, ".conf"), "x")},
                               Opts(static_cast<char>('a' + i)));
      plan.set_application_id(absl::StrCat("app", i));
      EXPECT_TRUE(deployer_->HandlePlan(plan).ok());
    });
  }
  for (auto& t : intake) t.join();
  deployer_->WaitIdle();
  for (int i = 0; i < kPlans; ++i) {
    absl::StatusOr<v1::Deployment> d = store_->Get(absl::StrCat("dep-p", i), false);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(d->state(), v1::DEPLOYMENT_STATE_SUCCEEDED) << d->id();
    EXPECT_FALSE(d->recovered()) << d->id() << " was taken for an orphan while it waited to start";
  }
  EXPECT_EQ(CountAction(v1::AUDIT_ACTION_DEPLOYMENT_STARTED), kPlans) << "each deployment ran once";
  EXPECT_EQ(CountAction(v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED), kPlans);
}

TEST_F(DeployerTest, HistoryIsListedNewestFirstWithPagesAndNoCap) {
  for (int i = 0; i < 13; ++i) {
    ASSERT_EQ(Deploy(MakePlan(absl::StrCat("p", i), {ConfigFile("conf", "app.conf", absl::StrCat(i))},
                              Opts(static_cast<char>('a' + i))))
                  .state(),
              v1::DEPLOYMENT_STATE_SUCCEEDED);
  }
  v1::ListDeploymentsRequest req;
  req.set_page_size(5);
  std::vector<std::string> ids;
  for (int page = 0; page < 10; ++page) {
    absl::StatusOr<v1::ListDeploymentsResponse> r = deployer_->ListDeployments(req);
    ASSERT_TRUE(r.ok()) << r.status();
    for (const auto& d : r->deployments()) ids.push_back(d.id());
    if (r->next_page_token().empty()) break;
    req.set_page_token(r->next_page_token());
  }
  ASSERT_EQ(ids.size(), 13u);
  EXPECT_EQ(ids.front(), "dep-p12");
  EXPECT_EQ(ids.back(), "dep-p0");
  req.set_page_size(1001);
  EXPECT_EQ(deployer_->ListDeployments(req).status().code(), absl::StatusCode::kInvalidArgument);
  // Any positive token is a position (beyond 2^31 too: it used to be an
  // int4 parameter, and PostgreSQL refused it as INTERNAL); others are not.
  req.set_page_size(5);
  req.set_page_token("3000000000");
  absl::StatusOr<v1::ListDeploymentsResponse> far = deployer_->ListDeployments(req);
  ASSERT_TRUE(far.ok()) << far.status();
  EXPECT_EQ(far->deployments_size(), 5);
  for (const char* bad : {"-5", "0", "x"}) {
    req.set_page_token(bad);
    EXPECT_EQ(deployer_->ListDeployments(req).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}


TEST_F(DeployerTest, FailingHealIsRetriedOnlyAfterBackoff) {
  PlanOptions o = Opts('1');
  o.self_heal = true;
  json worker = json::parse(R"({
    "apiVersion": "ferry.dev/v1", "kind": "Process", "metadata": {"name": "worker"},
    "spec": {"command": ["/bin/sh", "-c", "test -f ok && exec sleep 1000"], "restartPolicy": "Never",
             "healthCheck": {"exec": {"command": ["/bin/true"]}, "initialDelaySeconds": 0.3}}})");
  std::ofstream(root_ + "/ok") << "";
  ASSERT_EQ(Deploy(MakePlan("p1", {worker}, o)).state(), v1::DEPLOYMENT_STATE_SUCCEEDED);
  v1::UpdateDriftSettingsRequest settings;
  settings.mutable_settings()->mutable_heal_backoff()->mutable_initial()->set_seconds(60);
  ASSERT_TRUE(deployer_->UpdateDriftSettings(settings).ok());
  // The worker dies and can no longer start: each heal fails.
  fs::remove(root_ + "/ok");
  testing::KillAllUnder(root_);
  deployer_->DriftPass(true);
  deployer_->WaitIdle();  // Heals run on scheduler workers.
  deployer_->DriftPass(true);
  deployer_->WaitIdle();  // Heals run on scheduler workers.
  deployer_->DriftPass(true);
  deployer_->WaitIdle();  // Heals run on scheduler workers.
  v1::ListDeploymentsRequest req;
  absl::StatusOr<v1::ListDeploymentsResponse> list = deployer_->ListDeployments(req);
  ASSERT_TRUE(list.ok());
  int heals = 0;
  for (const auto& d : list->deployments()) {
    if (d.kind() != v1::DEPLOYMENT_KIND_SELF_HEAL) continue;
    ++heals;
    EXPECT_EQ(d.state(), v1::DEPLOYMENT_STATE_FAILED) << "a self-heal is never rolled back";
  }
  EXPECT_EQ(heals, 1) << "healing was retried without waiting for the backoff";
  EXPECT_EQ(CountAction(v1::AUDIT_ACTION_DRIFT_DETECTED), 1);
  EXPECT_EQ(CountAction(v1::AUDIT_ACTION_DRIFT_HEALED), 0);
}

TEST_F(DeployerTest, DisabledDriftDetectionLooksAtNothing) {
  ASSERT_EQ(Deploy(MakePlan("p1", {ConfigFile("conf", "app.conf", "v1\n")}, Opts('1'))).state(),
            v1::DEPLOYMENT_STATE_SUCCEEDED);
  v1::UpdateDriftSettingsRequest settings;
  settings.mutable_settings()->set_application_id("web-app");
  settings.mutable_settings()->set_environment_id("dev");
  settings.mutable_settings()->set_disabled(true);
  settings.mutable_update_mask()->add_paths("disabled");
  absl::StatusOr<v1::DriftSettings> updated = deployer_->UpdateDriftSettings(settings);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_TRUE(updated->disabled());
  EXPECT_EQ(updated->interval().seconds(), 1);  // The default in effect (--drift-interval).
  std::ofstream(root_ + "/app.conf") << "edited\n";
  deployer_->DriftPass(true);
  deployer_->WaitIdle();  // Heals run on scheduler workers.
  EXPECT_EQ(CountAction(v1::AUDIT_ACTION_DRIFT_DETECTED), 0);
  settings.mutable_update_mask()->set_paths(0, "colour");
  EXPECT_EQ(deployer_->UpdateDriftSettings(settings).status().code(), absl::StatusCode::kInvalidArgument);

  // Settings that cannot be read are an error, not the defaults: those
  // would show detection on, let a partial update reset "disabled", and
  // heal what the operator left alone.
  ASSERT_TRUE(pool_->RunInTransaction([](pqxx::work& txn) {
                     txn.exec0("UPDATE deployer.drift_settings SET record = '\\x0a05'::bytea");
                     return absl::OkStatus();
                   }).ok());
  EXPECT_FALSE(deployer_->GetDriftSettings("web-app", "dev").ok());
  settings.mutable_update_mask()->set_paths(0, "interval");
  settings.mutable_settings()->mutable_interval()->set_seconds(30);
  EXPECT_FALSE(deployer_->UpdateDriftSettings(settings).ok());
  deployer_->DriftPass(true);
  deployer_->WaitIdle();  // Heals run on scheduler workers.
  EXPECT_EQ(CountAction(v1::AUDIT_ACTION_DRIFT_DETECTED), 0);
}


TEST_F(DeployerTest, CrashBetweenRecordingARollbackAndFailingTheDeploymentIsSettledOnce) {
  ASSERT_EQ(Deploy(MakePlan("p1", {ConfigFile("conf", "app.conf", "v1\n")}, Opts('1'))).state(),
            v1::DEPLOYMENT_STATE_SUCCEEDED);
  // What a deployer leaves when it dies right after recording the rollback
  // of a failing deployment: that deployment RUNNING, its rollback PENDING.
  v1::Plan p2 = MakePlan("p2", {ConfigFile("conf", "app.conf", "v2\n")}, Opts('2'));
  v1::Deployment d;
  d.set_id("dep-p2");
  d.set_application_id("web-app");
  d.set_environment_id("dev");
  d.set_plan_id("p2");
  d.set_kind(v1::DEPLOYMENT_KIND_ROLLOUT);
  d.set_state(v1::DEPLOYMENT_STATE_RUNNING);
  d.mutable_revision()->set_sha(Sha('2'));
  ASSERT_TRUE(store_->Create(d, p2, {}).ok());
  absl::StatusOr<v1::Plan> p1_spec = store_->GetSpec("dep-p1");
  ASSERT_TRUE(p1_spec.ok());
  v1::Deployment r;
  r.set_id("dep-rollback");
  r.set_application_id("web-app");
  r.set_environment_id("dev");
  r.set_kind(v1::DEPLOYMENT_KIND_AUTO_ROLLBACK);
  r.set_state(v1::DEPLOYMENT_STATE_PENDING);
  r.mutable_revision()->set_sha(Sha('1'));
  r.set_rollback_of_deployment_id("dep-p2");
  r.set_restored_deployment_id("dep-p1");
  ASSERT_TRUE(store_->Create(r, *p1_spec, {}).ok());

  deployer_->RecoverOrphans();
  deployer_->WaitIdle();
  absl::StatusOr<v1::Deployment> rb = store_->Get("dep-rollback", false);
  ASSERT_TRUE(rb.ok());
  EXPECT_EQ(rb->state(), v1::DEPLOYMENT_STATE_SUCCEEDED) << rb->message();
  EXPECT_TRUE(rb->recovered());
  absl::StatusOr<v1::Deployment> failed = store_->Get("dep-p2", false);
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->state(), v1::DEPLOYMENT_STATE_ROLLED_BACK);
  EXPECT_EQ(failed->rolled_back_by_deployment_id(), "dep-rollback");
  EXPECT_TRUE(store_->Unfinished()->empty());
  EXPECT_EQ(store_->List(DeploymentFilter{})->deployments.size(), 3u) << "a second rollback was made";
  EXPECT_EQ(Read(root_ + "/app.conf"), "v1\n");
  ASSERT_FALSE(plans_.results().empty());
  EXPECT_EQ(plans_.results().back().plan_id(), "p2");
  EXPECT_EQ(plans_.results().back().state(), v1::PLAN_STATE_ROLLED_BACK);
}

}  // namespace
}  // namespace ferry::deployer
