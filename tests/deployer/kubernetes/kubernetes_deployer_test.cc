// The deployer (real PostgreSQL store, the planner faked at the PlanSource
// seam) deploying to the test run's real kube-apiserver through the
// Kubernetes target: health-gated waves, prune by inventory, automatic
// rollback, rollback from stored manifests, drift and self-heal. No
// controllers run: the tests write a Deployment's status themselves.
#include <gtest/gtest.h>

#include "tests/deployer/kubernetes/kube_deployer_harness.h"

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace ferry::deployer::testing_kube {
namespace {

TEST_F(KubernetesDeployerTest, DeploysPrunesByInventoryAndRollsBackAnUnhealthyRollout) {
  v1::Deployment d1 = Deploy(Plan("p1", {Deployment("web", "nginx:1"), ConfigMap("a", "1"), ConfigMap("b", "1")}, '1'));
  ASSERT_EQ(d1.state(), v1::DEPLOYMENT_STATE_SUCCEEDED) << d1.message();
  EXPECT_EQ(Kube("get configmap a -o jsonpath={.data.value}"), "1");
  EXPECT_EQ(Kube("get deployment web -o jsonpath={.spec.template.spec.containers[0].image}"), "nginx:1");

  // b's labels removed by hand: still Ferry's (inventory), still pruned.
  Kube(absl::StrCat("label configmap b ", kubernetes::kApplicationLabel, "-"));
  // An object of the application's labels that Ferry never applied: never touched.
  Kube(absl::StrCat("create configmap stranger --from-literal=x=y"));
  Kube(absl::StrCat("label configmap stranger ", kubernetes::kApplicationLabel, "=shop ",
                    kubernetes::kEnvironmentLabel, "=dev"));
  v1::Deployment d2 = Deploy(Plan("p2", {Deployment("web", "nginx:2"), ConfigMap("a", "2")}, '2'));
  ASSERT_EQ(d2.state(), v1::DEPLOYMENT_STATE_SUCCEEDED) << d2.message();
  EXPECT_EQ(Kube("get configmap b").rfind("<exit", 0), 0u) << "b was not pruned";
  EXPECT_EQ(Kube("get configmap stranger -o jsonpath={.data.x}"), "y");
  EXPECT_EQ(Kube("get configmap a -o jsonpath={.data.value}"), "2");

  // A rollout that never becomes healthy: rolled back to the last good manifests.
  v1::Deployment d3 = Deploy(Plan("p3", {Deployment("web", "broken"), ConfigMap("a", "3")}, '3', /*health=*/3));
  EXPECT_EQ(d3.state(), v1::DEPLOYMENT_STATE_ROLLED_BACK) << d3.message();
  EXPECT_NE(d3.message().find("not healthy"), std::string::npos) << d3.message();
  EXPECT_EQ(Kube("get deployment web -o jsonpath={.spec.template.spec.containers[0].image}"), "nginx:2");
  EXPECT_EQ(Kube("get configmap a -o jsonpath={.data.value}"), "2");
  absl::StatusOr<v1::PinState> pin = store_->GetPin("shop", "dev");
  ASSERT_TRUE(pin.ok());
  EXPECT_TRUE(pin->pinned());

  // An operator's rollback to p1 (the planner is "down": stored manifests) restores b.
  v1::RollbackRequest req;
  req.set_application_id("shop");
  req.set_environment_id("dev");
  req.mutable_actor()->set_id("bob");
  req.set_sha(Sha('1'));
  absl::StatusOr<v1::RollbackResponse> rb = deployer_->Rollback(req);
  ASSERT_TRUE(rb.ok()) << rb.status();
  deployer_->WaitIdle();
  absl::StatusOr<v1::Deployment> d = store_->Get(rb->deployment().id(), false);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->state(), v1::DEPLOYMENT_STATE_SUCCEEDED) << d->message();
  EXPECT_EQ(Kube("get configmap b -o jsonpath={.data.value}"), "1");
  EXPECT_EQ(Kube("get deployment web -o jsonpath={.spec.template.spec.containers[0].image}"), "nginx:1");
}

TEST_F(KubernetesDeployerTest, ARolloutPastItsProgressDeadlineFailsAtOnceNotAtTheHealthTimeout) {
  v1::Deployment d1 = Deploy(Plan("p1", {Deployment("web", "nginx:1")}, '1'));
  ASSERT_EQ(d1.state(), v1::DEPLOYMENT_STATE_SUCCEEDED) << d1.message();
  absl::Time start = absl::Now();
  v1::Deployment d2 = Deploy(Plan("p2", {Deployment("web", "unschedulable")}, '2', /*health=*/120));
  absl::Duration took = absl::Now() - start;
  EXPECT_EQ(d2.state(), v1::DEPLOYMENT_STATE_ROLLED_BACK) << d2.message();
  EXPECT_NE(d2.message().find("progress deadline exceeded"), std::string::npos) << d2.message();
  EXPECT_NE(d2.message().find("waiting cannot mend"), std::string::npos) << d2.message();
  // Rolled back well before the 120 s health timeout.
  EXPECT_LT(took, absl::Seconds(60)) << d2.message();
  EXPECT_EQ(Kube("get deployment web -o jsonpath={.spec.template.spec.containers[0].image}"), "nginx:1");
}

TEST_F(KubernetesDeployerTest, DriftOnAManagedFieldIsDetectedAuditedWithItsPathAndHealed) {
  self_heal_ = true;
  v1::Deployment d1 = Deploy(Plan("p1", {Deployment("web", "nginx:1"), ConfigMap("a", "1")}, '1'));
  ASSERT_EQ(d1.state(), v1::DEPLOYMENT_STATE_SUCCEEDED) << d1.message();
  v1::GetLiveStateRequest req;
  req.set_application_id("shop");
  req.set_environment_id("dev");
  absl::StatusOr<v1::LiveState> live = deployer_->GetLiveState(req);
  ASSERT_TRUE(live.ok()) << live.status();
  EXPECT_EQ(live->sync_status(), v1::SYNC_STATUS_SYNCED);  // Defaulted fields are not drift.
  EXPECT_EQ(live->health(), v1::HEALTH_STATUS_HEALTHY);

  Kube("scale deployment web --replicas=7");
  Kube("patch configmap a --type=merge -p '{\"data\":{\"value\":\"edited\"}}'");
  // The target sees others' writes through its watches: within moments.
  absl::Time until = absl::Now() + absl::Seconds(5);
  do {
    live = deployer_->GetLiveState(req);
    ASSERT_TRUE(live.ok());
    bool both = true;
    for (const auto& o : live->objects()) both = both && o.drift() == v1::DRIFT_STATUS_MODIFIED;
    if (both) break;
    absl::SleepFor(absl::Milliseconds(20));
  } while (absl::Now() < until);
  EXPECT_EQ(live->sync_status(), v1::SYNC_STATUS_OUT_OF_SYNC);
  deployer_->DriftPass(/*force=*/true);
  deployer_->WaitIdle();
  EXPECT_EQ(CountAction(v1::AUDIT_ACTION_DRIFT_DETECTED), 2);
  EXPECT_EQ(CountAction(v1::AUDIT_ACTION_DRIFT_HEALED), 2);
  std::string audit = AuditText();
  EXPECT_NE(audit.find("/spec/replicas"), std::string::npos) << audit;
  EXPECT_NE(audit.find("/data/value"), std::string::npos) << audit;
  EXPECT_EQ(Kube("get deployment web -o jsonpath={.spec.replicas}"), "2");
  EXPECT_EQ(Kube("get configmap a -o jsonpath={.data.value}"), "1");
  live = deployer_->GetLiveState(req);
  ASSERT_TRUE(live.ok());
  EXPECT_EQ(live->sync_status(), v1::SYNC_STATUS_SYNCED);
}

// With a drift interval of an hour, a change by another manager is still
// found within moments: the watch marks the application changed and the
// next (not due) drift pass checks it.
class KubernetesDeployerWatchTest : public KubernetesDeployerTest {
 protected:
  KubernetesDeployerWatchTest() { drift_interval_ = absl::Hours(1); }
};

TEST_F(KubernetesDeployerWatchTest, DriftIsFoundFromTheWatchLongBeforeTheInterval) {
  v1::Deployment d1 = Deploy(Plan("p1", {ConfigMap("a", "1")}, '1'));
  ASSERT_EQ(d1.state(), v1::DEPLOYMENT_STATE_SUCCEEDED) << d1.message();
  deployer_->DriftPass(/*force=*/false);  // Due once (never checked): next check in an hour.
  deployer_->WaitIdle();
  ASSERT_EQ(CountAction(v1::AUDIT_ACTION_DRIFT_DETECTED), 0);
  absl::Time changed = absl::Now();
  Kube("patch configmap a --field-manager=ops-console --type=merge -p '{\"data\":{\"value\":\"edited\"}}'");
  absl::Time until = absl::Now() + absl::Seconds(5);
  while (CountAction(v1::AUDIT_ACTION_DRIFT_DETECTED) == 0 && absl::Now() < until) {
    deployer_->DriftPass(/*force=*/false);
    deployer_->WaitIdle();
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(CountAction(v1::AUDIT_ACTION_DRIFT_DETECTED), 1);
  EXPECT_LT(absl::Now() - changed, absl::Seconds(3));
  EXPECT_NE(AuditText().find("/data/value"), std::string::npos) << AuditText();
  // Nothing changed since: the next passes do not check again.
  deployer_->DriftPass(/*force=*/false);
  deployer_->WaitIdle();
  EXPECT_EQ(CountAction(v1::AUDIT_ACTION_DRIFT_DETECTED), 1);
}

TEST_F(KubernetesDeployerTest, SecretValuesStayOutOfLiveStateStepsAndAudit) {
  json secret = {{"apiVersion", "v1"},
                 {"kind", "Secret"},
                 {"metadata", {{"name", "db"}}},
                 {"stringData", {{"password", "pa55-w0rd-xyz"}}}};
  v1::Deployment d1 = Deploy(Plan("p1", {secret}, '1'));
  ASSERT_EQ(d1.state(), v1::DEPLOYMENT_STATE_SUCCEEDED) << d1.message();
  v1::GetLiveStateRequest req;
  req.set_application_id("shop");
  req.set_environment_id("dev");
  req.set_include_json(true);
  absl::StatusOr<v1::LiveState> live = deployer_->GetLiveState(req);
  ASSERT_TRUE(live.ok()) << live.status();
  std::string text = live->DebugString() + d1.DebugString() + AuditText();
  EXPECT_EQ(text.find("pa55-w0rd-xyz"), std::string::npos) << text;
  EXPECT_EQ(text.find("cGE1NS13MHJkLXh5eg"), std::string::npos) << text;  // base64
  EXPECT_NE(text.find("sha256:"), std::string::npos) << text;
}

TEST_F(KubernetesDeployerTest, AConflictFailsTheDeploymentNamingTheOtherManager) {
  std::string out;
  ASSERT_EQ(Kubectl(absl::StrCat("-n ", ns_.name(), " apply --server-side --field-manager=hotfix -f -"), &out,
                    ConfigMap("a", "theirs").dump()),
            0)
      << out;
  v1::Deployment d = Deploy(Plan("p1", {ConfigMap("a", "ours")}, '1'));
  EXPECT_EQ(d.state(), v1::DEPLOYMENT_STATE_FAILED) << d.message();
  EXPECT_NE(d.message().find(".data.value"), std::string::npos) << d.message();
  EXPECT_NE(d.message().find("hotfix"), std::string::npos) << d.message();
  EXPECT_EQ(Kube("get configmap a -o jsonpath={.data.value}"), "theirs");
}

TEST_F(KubernetesDeployerTest, ObserveLiveStateDryRunsTheDesiredObjectsSoOnlyRealChangesDifferAndConflictsShow) {
  v1::Plan p1 = Plan("p1", {Deployment("web", "nginx:1"), ConfigMap("a", "1")}, '1');
  ASSERT_EQ(Deploy(p1).state(), v1::DEPLOYMENT_STATE_SUCCEEDED);
  auto observe = [&](const std::vector<json>& desired) {
    v1::Plan p = Plan("observe", desired, '2');
    v1::ObserveLiveStateRequest req;
    req.set_application_id("shop");
    req.set_environment_id("dev");
    *req.mutable_target() = p.target();
    for (const v1::Manifest& m : p.manifests()) *req.add_desired() = m;
    absl::StatusOr<v1::ObserveLiveStateResponse> r = deployer_->ObserveLiveState(req);
    EXPECT_TRUE(r.ok()) << r.status();
    std::map<std::string, v1::LiveObject> out;
    if (r.ok()) {
      for (const v1::LiveObject& o : r->state().objects()) out[o.object().name()] = o;
    }
    return out;
  };
  auto differences = [](const v1::LiveObject& o) {
    return kubernetes::DifferentFields(kubernetes::WithoutServerFields(*ParseJson(o.live_json())),
                                       kubernetes::WithoutServerFields(*ParseJson(o.dry_run_json())));
  };
  // Unchanged: the server's dry run of the rendered object is the live object
  // (every default the server added, inside lists too, on both sides).
  std::map<std::string, v1::LiveObject> same = observe({Deployment("web", "nginx:1"), ConfigMap("a", "1")});
  ASSERT_FALSE(same["web"].dry_run_json().empty());
  EXPECT_NE(same["web"].dry_run_json().find("imagePullPolicy"), std::string::npos);
  EXPECT_TRUE(differences(same["web"]).empty()) << same["web"].dry_run_json();
  EXPECT_TRUE(same["web"].conflict().empty());
  // A new image: that field alone differs.
  std::map<std::string, v1::LiveObject> changed = observe({Deployment("web", "nginx:2"), ConfigMap("a", "1")});
  EXPECT_EQ(differences(changed["web"]), (std::vector<std::string>{"/metadata/annotations/app.ferry.dev~1applied-sha256",
                                                                    "/spec/template/spec/containers/0/image"}));
  // Another manager took data.value over: the conflict is named, the forced result shown.
  std::string out;
  ASSERT_EQ(Kubectl(absl::StrCat("-n ", ns_.name(), " apply --server-side --force-conflicts --field-manager=hotfix -f -"),
                    &out,
                    ConfigMap("a", "theirs").dump()),
            0)
      << out;
  // Objects unchanged in Git are judged from the watch cache (live as
  // applied: no dry run needed), so the other manager's write shows once the
  // watch has delivered it: at once on an idle machine, later under load.
  std::map<std::string, v1::LiveObject> conflicted;
  for (absl::Time deadline = absl::Now() + absl::Seconds(60); absl::Now() < deadline;
       absl::SleepFor(absl::Milliseconds(100))) {
    conflicted = observe({Deployment("web", "nginx:1"), ConfigMap("a", "1")});
    if (!conflicted["a"].conflict().empty()) break;
  }
  EXPECT_NE(conflicted["a"].conflict().find(".data.value"), std::string::npos) << conflicted["a"].conflict();
  EXPECT_NE(conflicted["a"].conflict().find("hotfix"), std::string::npos) << conflicted["a"].conflict();
  EXPECT_EQ((*ParseJson(conflicted["a"].dry_run_json()))["data"]["value"], "1");
  EXPECT_EQ(Kube("get configmap a -o jsonpath={.data.value}"), "theirs");  // A dry run changes nothing.
}

}  // namespace
}  // namespace ferry::deployer::testing_kube
