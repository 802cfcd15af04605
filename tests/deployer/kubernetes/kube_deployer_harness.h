// The harness of the deployer's tests against a real kube-apiserver: the
// deployer with a real PostgreSQL store, the planner faked at the PlanSource
// seam, the Kubernetes target, and a thread playing the Deployment
// controller. Used by kubernetes_deployer_test.cc and kube_watch_gap_test.cc.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "tests/deployer/deploy_and_wait.h"
#include "absl/strings/str_cat.h"
#include "common/json/json.h"
#include "common/outbox/postgres_outbox_store.h"
#include "common/postgres/migrator.h"
#include "deployer_migrations.h"
#include "services/deployer/deployer.h"
#include "services/deployer/host/host_target.h"
#include "services/deployer/kubernetes/kube_objects.h"
#include "services/deployer/kubernetes/kubernetes_target.h"
#include "services/deployer/postgres_deployment_store.h"
#include "services/deployer/target_router.h"
#include "tests/deployer/test_util.h"
#include "tests/support/kube_fixture.h"
#include "tests/support/test_database.h"

namespace ferry::deployer::testing_kube {

using nlohmann::json;
using ferry::testing::Kubectl;
using ferry::testing::TestKube;
using ferry::testing::TestNamespace;

inline std::string Sha(char c) { return std::string(40, c); }

inline json ConfigMap(const std::string& name, const std::string& value) {
  return {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", name}}}, {"data", {{"value", value}}}};
}

inline json Deployment(const std::string& name, const std::string& image) {
  return json::parse(absl::StrCat(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":")", name,
                                  R"("},"spec":{"replicas":2,"selector":{"matchLabels":{"app":")", name,
                                  R"("}},"template":{"metadata":{"labels":{"app":")", name,
                                  R"("}},"spec":{"containers":[{"name":"c","image":")", image, R"("}]}}}})"));
}

class KubernetesDeployerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pool_ = db_.Pool(8);
    ASSERT_TRUE(postgres::Migrate(*pool_, DeployerMigrations()).ok());
    outbox_ = std::make_unique<outbox::PostgresOutboxStore>(pool_.get(), "deployer", "deployer");
    store_ = std::make_unique<PostgresDeploymentStore>(pool_.get(), outbox_.get());
    metrics_ = std::make_unique<DeployerMetrics>(registry_);
    options_.deployer_id = "test";
    options_.runner.health_poll = absl::Milliseconds(100);
    options_.drift_interval = drift_interval_;
    deployer_ = std::make_unique<Deployer>(store_.get(), &router_, &plans_, &notifier_, metrics_.get(), &clock_, options_);
    // The Deployment controller's part: report every Deployment of the
    // namespace whose image is not "broken" as rolled out.
    controller_ = std::thread([this] {
      while (!stop_) {
        PlayDeploymentController();
        absl::SleepFor(absl::Milliseconds(100));
      }
    });
  }
  void TearDown() override {
    stop_ = true;
    controller_.join();
    deployer_->Stop();
    notifier_.Shutdown();
  }

  void PlayDeploymentController() {
    std::string out;
    if (Kubectl(absl::StrCat("-n ", ns_.name(), " get deployments -o json"), &out) != 0) return;
    absl::StatusOr<json> list = ParseJson(out);
    if (!list.ok() || !(*list)["items"].is_array()) return;
    for (const json& d : (*list)["items"]) {
      std::string image = d["spec"]["template"]["spec"]["containers"][0].value("image", "");
      if (image == "broken") continue;
      int64_t gen = d["metadata"].value("generation", 0);
      if (image == "unschedulable") {
        // The controller gives up on the rollout at once, as it does past
        // progressDeadlineSeconds.
        Kubectl(absl::StrCat("-n ", ns_.name(), " patch deployment ", d["metadata"].value("name", ""),
                             " --subresource=status --type=merge -p '{\"status\":{\"observedGeneration\":", gen,
                             R"(,"conditions":[{"type":"Progressing","status":"False","reason":"ProgressDeadlineExceeded",)",
                             R"("message":"ReplicaSet \"web-1\" has timed out progressing."}]}}')"),
                &out);
        continue;
      }
      if (d.contains("status") && d["status"].value("observedGeneration", int64_t{0}) == gen) continue;
      int64_t n = d["spec"].value("replicas", 1);
      std::string status = absl::StrCat(R"({"status":{"observedGeneration":)", gen, R"(,"replicas":)", n,
                                        R"(,"updatedReplicas":)", n, R"(,"readyReplicas":)", n,
                                        R"(,"availableReplicas":)", n,
                                        R"(,"conditions":[{"type":"Progressing","status":"True",)"
                                        R"("reason":"NewReplicaSetAvailable"}]}})");
      Kubectl(absl::StrCat("-n ", ns_.name(), " patch deployment ", d["metadata"].value("name", ""),
                           " --subresource=status --type=merge -p '", status, "'"),
              &out);
    }
  }

  v1::Plan Plan(const std::string& id, const std::vector<json>& objects, char sha, int health_seconds = 20) {
    v1::Plan p;
    p.set_id(id);
    p.set_application_id("shop");
    p.set_environment_id("dev");
    p.set_state(v1::PLAN_STATE_APPROVED);
    p.set_trigger(v1::PLAN_TRIGGER_NEW_REVISION);
    p.mutable_target_revision()->set_repository_id("repo");
    p.mutable_target_revision()->set_ref("refs/heads/main");
    p.mutable_target_revision()->set_sha(Sha(sha));
    p.set_manifests_digest("sha256:" + Sha(sha));
    for (const json& obj : objects) {
      v1::Manifest* m = p.add_manifests();
      std::string api = obj["apiVersion"];
      m->mutable_object()->set_group(api.find('/') == std::string::npos ? "" : api.substr(0, api.find('/')));
      m->mutable_object()->set_kind(obj["kind"]);
      m->mutable_object()->set_name(obj["metadata"]["name"]);
      m->set_json(obj.dump());
      m->set_source_path("apps/shop/" + obj["metadata"].value("name", "") + ".yaml");
    }
    p.mutable_target()->set_kind(v1::TARGET_KIND_KUBERNETES);
    p.mutable_target()->mutable_kubernetes()->set_kubeconfig(kubeconfig_);
    p.mutable_target()->mutable_kubernetes()->set_namespace_(ns_.name());
    p.mutable_sync_policy()->set_automated(true);
    p.mutable_sync_policy()->set_prune(true);
    p.mutable_sync_policy()->set_self_heal(self_heal_);
    p.mutable_sync_policy()->set_force_conflicts(self_heal_);
    p.mutable_health_timeout()->set_seconds(health_seconds);
    p.mutable_decision()->set_automatic(true);
    p.mutable_decision()->mutable_actor()->set_id("ferry");
    return p;
  }

  v1::Deployment Deploy(const v1::Plan& plan) {
    return testing::DeployAndWait(*deployer_, *store_, plan);
  }

  std::string Kube(const std::string& args) {
    std::string out;
    int rc = Kubectl(absl::StrCat("-n ", ns_.name(), " ", args), &out);
    return rc == 0 ? out : "<exit " + std::to_string(rc) + ">";
  }

  int CountAction(v1::AuditAction a) {
    absl::StatusOr<std::vector<outbox::PendingEvent>> events = outbox_->FetchUnsent(100000);
    int n = 0;
    for (const auto& e : *events) n += e.event.action() == a;
    return n;
  }

  std::string AuditText() {
    absl::StatusOr<std::vector<outbox::PendingEvent>> events = outbox_->FetchUnsent(100000);
    std::string all;
    for (const auto& e : *events) all += e.event.DebugString();
    return all;
  }

  TestNamespace ns_;
  ferry::testing::TestDatabase db_;
  std::unique_ptr<postgres::ConnectionPool> pool_;
  std::unique_ptr<outbox::PostgresOutboxStore> outbox_;
  std::unique_ptr<PostgresDeploymentStore> store_;
  host::HostTargetFactory host_;
  kubernetes::KubernetesTargetFactory kube_{"/nonexistent", "", ""};
  TargetRouter router_{&host_, &kube_};
  ferry::deployer::testing::FakePlanSource plans_;
  DeploymentNotifier notifier_;
  prometheus::Registry registry_;
  std::unique_ptr<DeployerMetrics> metrics_;
  SystemClock clock_;
  DeployerOptions options_;
  std::unique_ptr<Deployer> deployer_;
  bool self_heal_ = false;
  std::string kubeconfig_ = TestKube().kubeconfig;  // The plans' cluster.
  absl::Duration drift_interval_ = absl::Seconds(1);
  std::atomic<bool> stop_{false};
  std::thread controller_;
};

}  // namespace ferry::deployer::testing_kube
