// Two ferry-deployer replicas of one deployer group deploying to the test
// run's real kube-apiserver, as Ferry runs in a cluster: real binaries, one
// PostgreSQL, an in-process fake planner. The replica holding the
// environment's lease is killed (SIGKILL) while its deployment waits for a
// Deployment to become available (no controller runs until the test plays
// one): the other replica takes the lease over, resumes the deployment
// without applying the object again, and finishes it once; the object keeps
// one field manager, Ferry's.

#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <thread>

#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "common/json/json.h"
#include "common/outbox/postgres_outbox_store.h"
#include "services/deployer/postgres_deployment_store.h"
#include "tests/deployer/fake_planner_service.h"
#include "tests/support/kube_fixture.h"
#include "tests/support/service_process.h"
#include "tests/support/test_database.h"

namespace ferry::deployer {
namespace {

using nlohmann::json;
using ferry::testing::Kubectl;
using ferry::testing::TestKube;
using ferry::testing::TestNamespace;
using testing::FakePlanner;

constexpr absl::Duration kLeaseTtl = absl::Seconds(3);

class KubernetesReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &planner_port_);
    builder.RegisterService(&planner_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(planner_port_, 0);
    pool_ = db_.Pool(2);
    outbox_ = std::make_unique<outbox::PostgresOutboxStore>(pool_.get(), "deployer", "deployer");
  }
  void TearDown() override {
    stop_controller_ = true;
    if (controller_.joinable()) controller_.join();
    replicas_.clear();
    planner_.Shutdown();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }

  void StartReplica(const std::string& id) {
    auto d = ferry::testing::ServiceProcess::Start(
        "ferry-deployer", {"--database-url=" + db_.url(), absl::StrCat("--planner-address=127.0.0.1:", planner_port_),
                           "--audit-address=127.0.0.1:1", "--drift-interval=1h", "--deployer-id=" + id,
                           "--deployer-group=default", absl::StrCat("--lease-ttl=", absl::ToInt64Seconds(kLeaseTtl), "s")});
    ASSERT_TRUE(d.ok()) << d.status();
    replicas_[id] = std::move(*d);
  }

  v1::Plan KubePlan() {
    json deployment = json::parse(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},
      "spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},
      "template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"c","image":"web:1"}]}}}})");
    v1::Plan p;
    p.set_id("plan-1");
    p.set_application_id("shop");
    p.set_environment_id("dev");
    p.set_state(v1::PLAN_STATE_APPROVED);
    p.set_trigger(v1::PLAN_TRIGGER_NEW_REVISION);
    p.mutable_target_revision()->set_repository_id("repo");
    p.mutable_target_revision()->set_ref("refs/heads/main");
    p.mutable_target_revision()->set_sha(std::string(40, '1'));
    p.set_manifests_digest("sha256:" + std::string(64, '1'));
    v1::Manifest* m = p.add_manifests();
    m->mutable_object()->set_group("apps");
    m->mutable_object()->set_kind("Deployment");
    m->mutable_object()->set_name("web");
    m->set_json(deployment.dump());
    m->set_source_path("apps/shop/web.yaml");
    p.set_manifest_count(1);
    p.mutable_target()->set_kind(v1::TARGET_KIND_KUBERNETES);
    p.mutable_target()->mutable_kubernetes()->set_kubeconfig(TestKube().kubeconfig);
    p.mutable_target()->mutable_kubernetes()->set_namespace_(ns_.name());
    p.mutable_sync_policy()->set_automated(true);
    p.mutable_sync_policy()->set_prune(true);
    p.mutable_health_timeout()->set_seconds(120);
    return p;
  }

  // The Deployment controller's part: report the Deployment as rolled out.
  void StartController() {
    controller_ = std::thread([this] {
      while (!stop_controller_) {
        std::string out;
        Kubectl(absl::StrCat("-n ", ns_.name(),
                             " patch deployment web --subresource=status --type=merge -p "
                             "'{\"status\":{\"observedGeneration\":1,\"replicas\":2,\"updatedReplicas\":2,"
                             "\"readyReplicas\":2,\"availableReplicas\":2}}'"),
                &out);
        absl::SleepFor(absl::Milliseconds(200));
      }
    });
  }

  json LiveDeployment() {
    std::string out;
    EXPECT_EQ(Kubectl(absl::StrCat("-n ", ns_.name(), " get deployment web -o json --show-managed-fields"), &out), 0)
        << out;
    absl::StatusOr<json> j = ParseJson(out);
    return j.ok() ? *j : json();
  }

  std::string Holder() {
    std::string holder;
    absl::Status s = pool_->RunInTransaction([&](pqxx::work& txn) {
      pqxx::result r = txn.exec("SELECT holder FROM deployer.environment_leases WHERE environment_id = 'dev'");
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
  template <typename Cond>
  bool WaitFor(Cond cond, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (cond()) return true;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return cond();
  }
  std::string Logs() {
    std::string out;
    for (auto& [id, p] : replicas_) absl::StrAppend(&out, "--- ", id, " ---\n", p->Log(), "\n");
    return out;
  }

  ferry::testing::TestDatabase db_;
  TestNamespace ns_;
  std::unique_ptr<postgres::ConnectionPool> pool_;
  std::unique_ptr<outbox::PostgresOutboxStore> outbox_;
  FakePlanner planner_;
  int planner_port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::map<std::string, std::unique_ptr<ferry::testing::ServiceProcess>> replicas_;
  std::atomic<bool> stop_controller_{false};
  std::thread controller_;
};

TEST_F(KubernetesReplicasTest, KilledHolderWaitingForHealthIsTakenOverAndTheObjectIsNotAppliedAgain) {
  StartReplica("replica-a");
  StartReplica("replica-b");
  planner_.Release(KubePlan());
  // The holder applies the Deployment and waits for it to become available.
  ASSERT_TRUE(WaitFor([&] { return Kubectl(absl::StrCat("-n ", ns_.name(), " get deployment web"), nullptr) == 0; },
                      absl::Seconds(30)))
      << Logs();
  const std::string holder = Holder();
  ASSERT_TRUE(replicas_.count(holder)) << "holder \"" << holder << "\"\n" << Logs();
  const std::string survivor = holder == "replica-a" ? "replica-b" : "replica-a";
  const std::string uid = LiveDeployment()["metadata"].value("uid", "");
  ASSERT_FALSE(uid.empty());
  // Past the apply, into the health wait.
  PostgresDeploymentStore store(pool_.get(), outbox_.get());
  ASSERT_TRUE(WaitFor(
      [&] {
        absl::StatusOr<v1::Deployment> d = store.Get("dep-plan-1", true);
        if (!d.ok()) return false;
        for (const auto& s : d->steps())
          if (s.kind() == v1::STEP_KIND_HEALTH_CHECK) return true;
        return false;
      },
      absl::Seconds(30)))
      << Logs();

  replicas_[holder]->Kill();
  ASSERT_TRUE(WaitFor([&] { return Holder() == survivor; }, absl::Seconds(20))) << Logs();
  StartController();

  auto result = planner_.ResultFor("plan-1", absl::Seconds(90));
  ASSERT_TRUE(result.has_value()) << Logs();
  EXPECT_EQ(result->state(), v1::PLAN_STATE_SUCCEEDED) << result->message();
  absl::StatusOr<v1::Deployment> d = store.Get("dep-plan-1", true);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->state(), v1::DEPLOYMENT_STATE_SUCCEEDED) << d->message();
  EXPECT_TRUE(d->recovered());
  EXPECT_EQ(d->deployer_id(), survivor);
  int applies = 0;
  for (const auto& s : d->steps()) {
    EXPECT_NE(s.result(), v1::STEP_RESULT_RUNNING) << s.DebugString();
    if (s.kind() == v1::STEP_KIND_APPLY) ++applies;
  }
  EXPECT_EQ(applies, 1) << "the object was applied again after the takeover:\n" << d->DebugString();
  EXPECT_EQ(Count("SELECT count(*) FROM deployer.deployments"), 1) << "a second deployment was made";

  // The same object, never re-created, with one spec writer: Ferry.
  json live = LiveDeployment();
  EXPECT_EQ(live["metadata"].value("uid", ""), uid);
  EXPECT_EQ(live["metadata"].value("generation", 0), 1);
  std::set<std::string> spec_managers;
  for (const json& f : live["metadata"]["managedFields"]) {
    if (f.value("subresource", "") == "status") continue;
    spec_managers.insert(f.value("manager", ""));
  }
  EXPECT_EQ(spec_managers, std::set<std::string>{"ferry"}) << live["metadata"]["managedFields"].dump();
}

}  // namespace
}  // namespace ferry::deployer
