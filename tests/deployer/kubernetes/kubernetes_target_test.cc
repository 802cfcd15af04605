// The Kubernetes target against the test run's real kube-apiserver (the
// `kube` fixture: no kubelet and no controllers, so the tests write the
// status a controller would, through the status subresource).
#include "services/deployer/kubernetes/kubernetes_target.h"

#include <gtest/gtest.h>

#include <fstream>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/crypto/sha256.h"
#include "common/json/json.h"
#include "services/deployer/kubernetes/kube_credentials.h"
#include "tests/support/kube_fixture.h"
#include "tests/support/test_database.h"

namespace ferry::deployer::kubernetes {
namespace {

using nlohmann::json;
using testing::Kubectl;
using testing::TestKube;
using testing::TestNamespace;

v1::DeployTarget KubeTarget(const std::string& kubeconfig, const std::string& context, const std::string& ns) {
  v1::DeployTarget t;
  t.set_kind(v1::TARGET_KIND_KUBERNETES);
  t.mutable_kubernetes()->set_kubeconfig(kubeconfig);
  t.mutable_kubernetes()->set_context(context);
  t.mutable_kubernetes()->set_namespace_(ns);
  return t;
}

TargetObject Obj(const std::string& text, int wave = 0) {
  json doc = *ParseJson(text);
  std::string api = doc["apiVersion"];
  ObjectKey key{api.find('/') == std::string::npos ? "" : api.substr(0, api.find('/')), doc["kind"],
                doc["metadata"].value("namespace", ""), doc["metadata"]["name"]};
  return TargetObject{key, DumpJsonLossy(doc), "app/objects.yaml", wave};
}

class KubernetesTargetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<Target*> t = factory_.For(KubeTarget(TestKube().kubeconfig, "", ns_.name()));
    ASSERT_TRUE(t.ok()) << t.status();
    target_ = static_cast<KubernetesTarget*>(*t);
  }

  absl::Status ApplyAll(const std::vector<TargetObject>& objects, bool force = false) {
    absl::Status s = ApplyAllOnce(objects, force);
    EXPECT_TRUE(s.ok() || s.code() == absl::StatusCode::kFailedPrecondition) << s;
    return s;
  }
  absl::Status ApplyAllOnce(const std::vector<TargetObject>& objects, bool force) {
    AppScope app = app_;
    app.force_conflicts = force;
    absl::StatusOr<std::vector<TargetObject>> prepared = target_->Prepare(app, objects, nullptr);
    if (!prepared.ok()) return prepared.status();
    for (const TargetObject& o : *prepared) {
      absl::Status s = target_->Apply(app, o, nullptr, absl::Now() + absl::Seconds(30), nullptr);
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  json Get(const std::string& what) {
    std::string out;
    EXPECT_EQ(Kubectl(absl::StrCat("-n ", ns_.name(), " get ", what, " -o json"), &out), 0) << out;
    absl::StatusOr<json> j = ParseJson(out);
    return j.ok() ? *j : json();
  }

  // Writes status as the controller would (merge patch on the status subresource).
  void WriteStatus(const std::string& path, const std::string& status) {
    absl::StatusOr<KubeResponse> r =
        target_->client().Request("PATCH", path + "/status", absl::StrCat(R"({"status":)", status, "}"),
                                  "application/merge-patch+json");
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->code, 200) << r->body;
  }

  // The target reads live objects through its watch: a change made outside
  // shows within moments, not at once. Polls for up to 5 s.
  v1::HealthStatus HealthSoon(const TargetObject& o, v1::HealthStatus want) {
    absl::Time until = absl::Now() + absl::Seconds(5);
    v1::HealthStatus got = target_->Health(app_, o).first;
    while (got != want && absl::Now() < until) {
      absl::SleepFor(absl::Milliseconds(20));
      got = target_->Health(app_, o).first;
    }
    return got;
  }
  ObservedObject ObserveUntil(const TargetObject& o, const std::function<bool(const ObservedObject&)>& done) {
    absl::Time until = absl::Now() + absl::Seconds(5);
    ObservedObject got = target_->Observe(app_, o.key, &o);
    while (!done(got) && absl::Now() < until) {
      absl::SleepFor(absl::Milliseconds(20));
      got = target_->Observe(app_, o.key, &o);
    }
    return got;
  }
  ObservedObject ObserveSoon(const TargetObject& o, v1::DriftStatus want) {
    return ObserveUntil(o, [want](const ObservedObject& got) { return got.drift == want; });
  }

  std::string NsPath(const std::string& prefix, const std::string& rest) {
    return absl::StrCat(prefix, "/namespaces/", ns_.name(), "/", rest);
  }

  TestNamespace ns_;
  KubernetesTargetFactory factory_{"/nonexistent", "", ""};
  KubernetesTarget* target_ = nullptr;
  AppScope app_{"web", "prod"};
};

constexpr char kConfigMap[] = R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings"},
  "data":{"color":"blue"}})";

TEST_F(KubernetesTargetTest, AppliesWithServerSideApplyLabelledWithApplicationAndEnvironment) {
  ASSERT_TRUE(ApplyAll({Obj(kConfigMap)}).ok());
  json cm = Get("configmap settings --show-managed-fields");
  EXPECT_EQ(cm["data"]["color"], "blue");
  EXPECT_EQ(cm["metadata"]["labels"][kApplicationLabel], "web");
  EXPECT_EQ(cm["metadata"]["labels"][kEnvironmentLabel], "prod");
  ASSERT_TRUE(cm["metadata"]["managedFields"].is_array());
  EXPECT_EQ(cm["metadata"]["managedFields"][0]["manager"], "ferry");
  EXPECT_EQ(cm["metadata"]["managedFields"][0]["operation"], "Apply");
  ObservedObject o = target_->Observe(app_, Obj(kConfigMap).key, nullptr);
  EXPECT_TRUE(o.exists);
  EXPECT_EQ(o.health, v1::HEALTH_STATUS_HEALTHY);
}

TEST_F(KubernetesTargetTest, DefaultedFieldsAreNotDriftButAChangedManagedFieldIs) {
  TargetObject deploy = Obj(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},
    "spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},
    "spec":{"containers":[{"name":"web","image":"nginx:1.27","resources":{"limits":{"cpu":"0.5"}},
    "ports":[{"containerPort":80}]}]}}}})");
  ASSERT_TRUE(ApplyAll({deploy}).ok());
  // The server defaulted strategy, imagePullPolicy, protocol, terminationMessagePath... and wrote cpu 0.5 as 500m.
  ObservedObject o = target_->Observe(app_, deploy.key, &deploy);
  EXPECT_EQ(o.drift, v1::DRIFT_STATUS_IN_SYNC) << o.drift_message;
  EXPECT_NE(o.live_json.find("imagePullPolicy"), std::string::npos);
  // Another manager's annotation: not a field of Ferry's, and it makes
  // Observe take the dry-run comparison (no longer only Ferry's apply).
  std::string out;
  ASSERT_EQ(Kubectl(absl::StrCat("-n ", ns_.name(), " annotate deployment web note=hello"), &out), 0) << out;
  o = ObserveUntil(deploy, [](const ObservedObject& got) { return got.live_json.find("hello") != std::string::npos; });
  EXPECT_NE(o.live_json.find("hello"), std::string::npos);
  EXPECT_EQ(o.drift, v1::DRIFT_STATUS_IN_SYNC) << o.drift_message;

  ASSERT_EQ(Kubectl(absl::StrCat("-n ", ns_.name(), " scale deployment web --replicas=5"), &out), 0) << out;
  o = ObserveSoon(deploy, v1::DRIFT_STATUS_MODIFIED);
  EXPECT_EQ(o.drift, v1::DRIFT_STATUS_MODIFIED);
  EXPECT_NE(o.drift_message.find("/spec/replicas"), std::string::npos) << o.drift_message;

  // Heal: re-applying takes the field back (forced: the scale made kubectl its manager).
  ASSERT_TRUE(ApplyAll({deploy}, /*force=*/true).ok());
  o = target_->Observe(app_, deploy.key, &deploy);
  EXPECT_EQ(o.drift, v1::DRIFT_STATUS_IN_SYNC) << o.drift_message;
  EXPECT_EQ(Get("deployment web")["spec"]["replicas"], 2);

  ASSERT_EQ(Kubectl(absl::StrCat("-n ", ns_.name(), " delete deployment web"), &out), 0) << out;
  o = ObserveSoon(deploy, v1::DRIFT_STATUS_MISSING);
  EXPECT_EQ(o.drift, v1::DRIFT_STATUS_MISSING);
  EXPECT_EQ(o.health, v1::HEALTH_STATUS_MISSING);
}

TEST_F(KubernetesTargetTest, ConflictWithAnotherManagerNamesFieldAndManagerUnlessForced) {
  std::string out;
  ASSERT_EQ(Kubectl(absl::StrCat("-n ", ns_.name(), " apply --server-side --field-manager=ops-console -f -"), &out,
                    R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings"},"data":{"color":"red"}})"),
            0)
      << out;
  absl::Status s = ApplyAll({Obj(kConfigMap)});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find(".data.color"), std::string::npos) << s;
  EXPECT_NE(s.message().find("ops-console"), std::string::npos) << s;
  EXPECT_NE(s.message().find("forceConflicts"), std::string::npos) << s;
  EXPECT_EQ(Get("configmap settings")["data"]["color"], "red");  // Nothing changed.

  ASSERT_TRUE(ApplyAll({Obj(kConfigMap)}, /*force=*/true).ok());
  EXPECT_EQ(Get("configmap settings")["data"]["color"], "blue");
}

TEST_F(KubernetesTargetTest, PruneDeletesFerrysObjectsAlsoWithoutLabelsButNeverOthers) {
  TargetObject a = Obj(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"x":"1"}})");
  TargetObject b = Obj(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"},"data":{"x":"1"}})");
  ASSERT_TRUE(ApplyAll({a, b}).ok());
  std::string out;
  // Someone removed b's labels: it is still in the inventory, so still pruned.
  ASSERT_EQ(Kubectl(absl::StrCat("-n ", ns_.name(), " label configmap b ", kApplicationLabel, "- ", kEnvironmentLabel,
                                 "-"),
                    &out),
            0)
      << out;
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  EXPECT_TRUE(target_->Delete(app_, a, deadline).ok());
  EXPECT_TRUE(target_->Delete(app_, b, deadline).ok());
  EXPECT_NE(Kubectl(absl::StrCat("-n ", ns_.name(), " get configmap a"), &out), 0);
  EXPECT_NE(Kubectl(absl::StrCat("-n ", ns_.name(), " get configmap b"), &out), 0);
  // Deleting a missing object is OK.
  EXPECT_TRUE(target_->Delete(app_, a, deadline).ok());
  // An object of the same name that Ferry did not create (no field of Ferry's) is left alone.
  ASSERT_EQ(Kubectl(absl::StrCat("-n ", ns_.name(), " create configmap a --from-literal=x=mine"), &out), 0) << out;
  EXPECT_TRUE(target_->Delete(app_, a, deadline).ok());
  EXPECT_EQ(Get("configmap a")["data"]["x"], "mine");
}

TEST_F(KubernetesTargetTest, DeletePropagationComesFromTheAnnotation) {
  TargetObject a = Obj(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a",
    "annotations":{"ferry.dev/delete-propagation":"Sideways"}},"data":{"x":"1"}})");
  ASSERT_TRUE(ApplyAll({a}).ok());
  absl::Status s = target_->Delete(app_, a, absl::Now() + absl::Seconds(10));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("Sideways"), std::string::npos) << s;
  TargetObject fg = Obj(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a",
    "annotations":{"ferry.dev/delete-propagation":"Orphan"}},"data":{"x":"1"}})");
  ASSERT_TRUE(ApplyAll({fg}).ok());
  // Orphan puts the orphan finalizer on the object, which the (absent)
  // garbage collector would remove: the object is marked for deletion.
  ASSERT_TRUE(target_->Delete(app_, fg, absl::Now() + absl::Seconds(10)).ok());
  json cm = Get("configmap a");
  EXPECT_TRUE(cm["metadata"].contains("deletionTimestamp")) << cm.dump();
  EXPECT_EQ(HealthSoon(fg, v1::HEALTH_STATUS_PROGRESSING), v1::HEALTH_STATUS_PROGRESSING);
  std::string out;
  Kubectl(absl::StrCat("-n ", ns_.name(), " patch configmap a --type=merge -p '{\"metadata\":{\"finalizers\":null}}'"),
          &out);
}

TEST_F(KubernetesTargetTest, NamespacesAndCrdsFirstAndCustomObjectsOnceEstablished) {
  std::string suffix = ns_.name();
  std::string group = absl::StrCat(suffix, ".example.com");
  TargetObject widget = Obj(absl::StrCat(R"({"apiVersion":")", group, R"(/v1","kind":"Widget","metadata":{"name":"w1",
    "namespace":")", suffix, R"(-extra"},"spec":{"size":3}})"));
  TargetObject crd = Obj(absl::StrCat(R"({"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition",
    "metadata":{"name":"widgets.)", group, R"("},"spec":{"group":")", group, R"(","scope":"Namespaced",
    "names":{"plural":"widgets","singular":"widget","kind":"Widget","listKind":"WidgetList"},
    "versions":[{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object",
    "properties":{"spec":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}}}}]}})"));
  TargetObject ns = Obj(absl::StrCat(R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":")", suffix,
                                     R"(-extra"}})"));
  TargetObject cm = Obj(kConfigMap);
  absl::StatusOr<std::vector<TargetObject>> prepared = target_->Prepare(app_, {widget, cm, crd, ns}, nullptr);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  ASSERT_EQ(prepared->size(), 4u);
  EXPECT_EQ((*prepared)[0].key.kind, "Namespace");
  EXPECT_EQ((*prepared)[1].key.kind, "ConfigMap");
  EXPECT_EQ((*prepared)[2].key.kind, "CustomResourceDefinition");
  EXPECT_EQ((*prepared)[3].key.kind, "Widget");
  for (const TargetObject& o : *prepared) {
    absl::Status s = target_->Apply(app_, o, nullptr, absl::Now() + absl::Seconds(30), nullptr);
    ASSERT_TRUE(s.ok()) << o.key.ToString() << ": " << s;
  }
  EXPECT_EQ(HealthSoon(crd, v1::HEALTH_STATUS_HEALTHY), v1::HEALTH_STATUS_HEALTHY);
  ObservedObject o = target_->Observe(app_, widget.key, &widget);
  EXPECT_TRUE(o.exists);
  EXPECT_EQ(o.drift, v1::DRIFT_STATUS_IN_SYNC) << o.drift_message;
  std::string out;
  Kubectl(absl::StrCat("delete namespace ", suffix, "-extra --wait=false"), &out);
  Kubectl(absl::StrCat("delete crd widgets.", group, " --wait=false"), &out);
}

TEST_F(KubernetesTargetTest, PrepareRefusesKindsTheClusterDoesNotServeAndNamespacedClusterObjects) {
  absl::StatusOr<std::vector<TargetObject>> p = target_->Prepare(
      app_, {Obj(R"({"apiVersion":"nothing.example.com/v1","kind":"Gadget","metadata":{"name":"g"}})")}, nullptr);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(p.status().message().find("app/objects.yaml: Gadget g"), std::string::npos) << p.status();
  EXPECT_NE(p.status().message().find("serves no such kind"), std::string::npos) << p.status();
  p = target_->Prepare(app_, {Obj(R"({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole",
    "metadata":{"name":"r","namespace":"x"}})")}, nullptr);
  EXPECT_NE(p.status().message().find("cluster-scoped"), std::string::npos) << p.status();
  p = target_->Prepare(app_, {Obj(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":""}})")}, nullptr);
  EXPECT_NE(p.status().message().find("metadata.name: is required"), std::string::npos) << p.status();
}

TEST_F(KubernetesTargetTest, HealthOfEachKindFollowsTheStatusWritten) {
  const std::string apps = "/apis/apps/v1";
  TargetObject deploy = Obj(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},
    "spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},
    "spec":{"containers":[{"name":"web","image":"nginx"}]}}}})");
  ASSERT_TRUE(ApplyAll({deploy}).ok());
  EXPECT_EQ(HealthSoon(deploy, v1::HEALTH_STATUS_PROGRESSING), v1::HEALTH_STATUS_PROGRESSING);
  WriteStatus(NsPath(apps, "deployments/web"),
              R"({"observedGeneration":1,"replicas":2,"updatedReplicas":2,"readyReplicas":2,"availableReplicas":2})");
  EXPECT_EQ(HealthSoon(deploy, v1::HEALTH_STATUS_HEALTHY), v1::HEALTH_STATUS_HEALTHY);
  WriteStatus(NsPath(apps, "deployments/web"),
              R"({"availableReplicas":1,"conditions":[{"type":"Progressing","status":"False",
                  "reason":"ProgressDeadlineExceeded","message":"ReplicaSet has timed out progressing."}]})");
  EXPECT_EQ(HealthSoon(deploy, v1::HEALTH_STATUS_DEGRADED), v1::HEALTH_STATUS_DEGRADED);

  TargetObject job = Obj(R"({"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"migrate"},"spec":{"template":
    {"spec":{"restartPolicy":"Never","containers":[{"name":"m","image":"busybox"}]}}}})");
  ASSERT_TRUE(ApplyAll({job}).ok());
  EXPECT_EQ(HealthSoon(job, v1::HEALTH_STATUS_PROGRESSING), v1::HEALTH_STATUS_PROGRESSING);
  WriteStatus(NsPath("/apis/batch/v1", "jobs/migrate"),
              R"({"startTime":"2026-01-01T00:00:00Z","failed":1,"conditions":[{"type":"FailureTarget","status":"True",
                 "reason":"BackoffLimitExceeded","lastTransitionTime":"2026-01-01T00:00:00Z"},{"type":"Failed",
                 "status":"True","reason":"BackoffLimitExceeded","lastTransitionTime":"2026-01-01T00:00:00Z"}]})");
  EXPECT_EQ(HealthSoon(job, v1::HEALTH_STATUS_DEGRADED), v1::HEALTH_STATUS_DEGRADED);

  TargetObject pvc = Obj(R"({"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"data"},
    "spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}})");
  ASSERT_TRUE(ApplyAll({pvc}).ok());
  EXPECT_EQ(HealthSoon(pvc, v1::HEALTH_STATUS_PROGRESSING), v1::HEALTH_STATUS_PROGRESSING);
  WriteStatus(NsPath("/api/v1", "persistentvolumeclaims/data"), R"({"phase":"Bound"})");
  EXPECT_EQ(HealthSoon(pvc, v1::HEALTH_STATUS_HEALTHY), v1::HEALTH_STATUS_HEALTHY);

  TargetObject lb = Obj(R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"front"},
    "spec":{"type":"LoadBalancer","selector":{"app":"web"},"ports":[{"port":80}]}})");
  ASSERT_TRUE(ApplyAll({lb}).ok());
  EXPECT_EQ(HealthSoon(lb, v1::HEALTH_STATUS_PROGRESSING), v1::HEALTH_STATUS_PROGRESSING);
  WriteStatus(NsPath("/api/v1", "services/front"), R"({"loadBalancer":{"ingress":[{"ip":"203.0.113.9"}]}})");
  EXPECT_EQ(HealthSoon(lb, v1::HEALTH_STATUS_HEALTHY), v1::HEALTH_STATUS_HEALTHY);

  TargetObject sts = Obj(R"({"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"db"},
    "spec":{"replicas":1,"serviceName":"db","selector":{"matchLabels":{"app":"db"}},"template":{"metadata":
    {"labels":{"app":"db"}},"spec":{"containers":[{"name":"db","image":"postgres"}]}}}})");
  ASSERT_TRUE(ApplyAll({sts}).ok());
  EXPECT_EQ(HealthSoon(sts, v1::HEALTH_STATUS_PROGRESSING), v1::HEALTH_STATUS_PROGRESSING);
  WriteStatus(NsPath(apps, "statefulsets/db"), R"({"observedGeneration":1,"replicas":1,"readyReplicas":1,
    "currentRevision":"db-1","updateRevision":"db-1"})");
  EXPECT_EQ(HealthSoon(sts, v1::HEALTH_STATUS_HEALTHY), v1::HEALTH_STATUS_HEALTHY);

  TargetObject ds = Obj(R"({"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"agent"},
    "spec":{"selector":{"matchLabels":{"app":"agent"}},"template":{"metadata":{"labels":{"app":"agent"}},
    "spec":{"containers":[{"name":"a","image":"busybox"}]}}}})");
  ASSERT_TRUE(ApplyAll({ds}).ok());
  WriteStatus(NsPath(apps, "daemonsets/agent"), R"({"observedGeneration":1,"desiredNumberScheduled":2,
    "currentNumberScheduled":2,"numberMisscheduled":0,"updatedNumberScheduled":2,"numberReady":1,"numberAvailable":1})");
  EXPECT_EQ(HealthSoon(ds, v1::HEALTH_STATUS_PROGRESSING), v1::HEALTH_STATUS_PROGRESSING);
  WriteStatus(NsPath(apps, "daemonsets/agent"), R"({"numberReady":2,"numberAvailable":2})");
  EXPECT_EQ(HealthSoon(ds, v1::HEALTH_STATUS_HEALTHY), v1::HEALTH_STATUS_HEALTHY);

  TargetObject pod = Obj(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"one"},
    "spec":{"containers":[{"name":"c","image":"busybox"}]}})");
  // No controller makes the namespace's default ServiceAccount, which Pod admission requires.
  TargetObject sa = Obj(R"({"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"default"}})");
  absl::Status applied = ApplyAll({pod, sa});
  ASSERT_TRUE(applied.ok()) << applied;
  EXPECT_EQ(HealthSoon(pod, v1::HEALTH_STATUS_PROGRESSING), v1::HEALTH_STATUS_PROGRESSING);
  WriteStatus(NsPath("/api/v1", "pods/one"), R"({"phase":"Running","containerStatuses":[{"name":"c","ready":false,
    "restartCount":4,"image":"busybox","imageID":"","state":{"waiting":{"reason":"CrashLoopBackOff"}}}]})");
  EXPECT_EQ(HealthSoon(pod, v1::HEALTH_STATUS_DEGRADED), v1::HEALTH_STATUS_DEGRADED);
}

TEST_F(KubernetesTargetTest, SecretValuesNeverLeaveAsLiveStateOrDrift) {
  TargetObject secret = Obj(R"({"apiVersion":"v1","kind":"Secret","metadata":{"name":"db"},
    "stringData":{"password":"hunter2-s3cr3t"}})");
  ASSERT_TRUE(ApplyAll({secret}).ok());
  ObservedObject o = target_->Observe(app_, secret.key, &secret);
  EXPECT_EQ(o.drift, v1::DRIFT_STATUS_IN_SYNC) << o.drift_message;
  EXPECT_EQ(o.live_json.find("hunter2"), std::string::npos) << o.live_json;
  EXPECT_EQ(o.live_json.find("aHVudGVyMi1zM2NyM3Q"), std::string::npos) << o.live_json;  // base64 of it
  EXPECT_NE(o.live_json.find("sha256:" + Sha256Hex("hunter2-s3cr3t")), std::string::npos) << o.live_json;
  std::string out;
  ASSERT_EQ(Kubectl(absl::StrCat("-n ", ns_.name(),
                                 " patch secret db --type=merge -p '{\"stringData\":{\"password\":\"other-v4lue\"}}'"),
                    &out),
            0)
      << out;
  o = ObserveSoon(secret, v1::DRIFT_STATUS_MODIFIED);
  EXPECT_EQ(o.drift, v1::DRIFT_STATUS_MODIFIED);
  EXPECT_NE(o.drift_message.find("/data/password"), std::string::npos) << o.drift_message;
  for (const std::string& s : {o.live_json, o.drift_message, o.health_message}) {
    EXPECT_EQ(s.find("hunter2"), std::string::npos) << s;
    EXPECT_EQ(s.find("other-v4lue"), std::string::npos) << s;
  }
}

TEST_F(KubernetesTargetTest, TwoClustersAreTwoTargetsEachWithItsOwnNamespace) {
  // A second API server is a second etcd and kube-apiserver (seconds of CPU
  // on this machine): the second "cluster" is a second context of a second
  // kubeconfig file, with its own namespace, on the same server.
  TestNamespace other;
  std::string dir = testing::MakeTempDir("kube-second");
  std::string second = dir + "/kubeconfig";
  std::string out;
  {
    std::ifstream in(TestKube().kubeconfig);
    std::ofstream o(second);
    o << in.rdbuf();
  }
  ASSERT_EQ(testing::KubectlWith(second, absl::StrCat("config set-context second --cluster=$(",
                                                      testing::KubectlPath(), " --kubeconfig ", second,
                                                      " config view -o jsonpath='{.contexts[0].context.cluster}') --user=$(",
                                                      testing::KubectlPath(), " --kubeconfig ", second,
                                                      " config view -o jsonpath='{.contexts[0].context.user}') --namespace=",
                                                      other.name()),
                                 &out),
            0)
      << out;
  absl::StatusOr<Target*> t2 = factory_.For(KubeTarget(second, "second", ""));
  ASSERT_TRUE(t2.ok()) << t2.status();
  ASSERT_NE(*t2, target_);
  EXPECT_EQ(static_cast<KubernetesTarget*>(*t2)->default_namespace(), other.name());
  ASSERT_TRUE(ApplyAll({Obj(kConfigMap)}).ok());
  TargetObject cm2 = Obj(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings"},"data":{"color":"green"}})");
  ASSERT_TRUE((*t2)->Apply(app_, cm2, nullptr, absl::Now() + absl::Seconds(10), nullptr).ok());
  EXPECT_EQ(Get("configmap settings")["data"]["color"], "blue");
  ASSERT_EQ(Kubectl(absl::StrCat("-n ", other.name(), " get configmap settings -o jsonpath={.data.color}"), &out), 0);
  EXPECT_EQ(out, "green");
  // The same configuration is the same target.
  EXPECT_EQ(*factory_.For(KubeTarget(second, "second", "")), *t2);
}

// Drift from the watch: another field manager changes a field Ferry set,
// and Observe sees it within moments without a GET of the object (the only
// request is the dry-run apply that names the field).
TEST_F(KubernetesTargetTest, DriftByAnotherManagerIsSeenFromTheWatchWithoutAGet) {
  TargetObject cm = Obj(kConfigMap);
  ASSERT_TRUE(ApplyAll({cm}).ok());
  ObservedObject o = target_->Observe(app_, cm.key, &cm);
  ASSERT_EQ(o.drift, v1::DRIFT_STATUS_IN_SYNC) << o.drift_message;
  int64_t gets = target_->client().get_count();
  std::string out;
  ASSERT_EQ(Kubectl(absl::StrCat("-n ", ns_.name(),
                                 " patch configmap settings --field-manager=ops-console --type=merge "
                                 "-p '{\"data\":{\"color\":\"red\"}}'"),
                    &out),
            0)
      << out;
  absl::Time changed = absl::Now();  // Written (kubectl's own start-up, seconds under load, not counted).
  o = ObserveSoon(cm, v1::DRIFT_STATUS_MODIFIED);
  absl::Duration took = absl::Now() - changed;
  EXPECT_EQ(o.drift, v1::DRIFT_STATUS_MODIFIED);
  EXPECT_NE(o.drift_message.find("/data/color"), std::string::npos) << o.drift_message;
  EXPECT_NE(o.live_json.find("red"), std::string::npos) << o.live_json;
  EXPECT_LT(took, absl::Seconds(2)) << "noticed after " << took;
  EXPECT_EQ(target_->client().get_count(), gets) << "Observe fetched the object instead of reading the watch";
  // Health reads the watch too.
  EXPECT_EQ(target_->Health(app_, cm).first, v1::HEALTH_STATUS_HEALTHY);
  EXPECT_EQ(target_->client().get_count(), gets);
  // Labels removed by someone: the object leaves the watch's selector, and
  // Observe asks the server (it still exists).
  ASSERT_EQ(Kubectl(absl::StrCat("-n ", ns_.name(), " label configmap settings ", kApplicationLabel, "-"), &out), 0)
      << out;
  absl::SleepFor(absl::Milliseconds(300));
  o = target_->Observe(app_, cm.key, &cm);
  EXPECT_TRUE(o.exists);
  EXPECT_EQ(o.drift, v1::DRIFT_STATUS_MODIFIED) << o.drift_message;
  EXPECT_GT(target_->client().get_count(), gets);
}

TEST_F(KubernetesTargetTest, WatchesStopAtTheCapAndKindsPastItAreReadByGet) {
  KubernetesTargetFactory capped{"/nonexistent", "", "", /*max_watches=*/1};
  absl::StatusOr<Target*> t = capped.For(KubeTarget(TestKube().kubeconfig, "", ns_.name()));
  ASSERT_TRUE(t.ok()) << t.status();
  auto* target = static_cast<KubernetesTarget*>(*t);
  TargetObject cm = Obj(kConfigMap);
  TargetObject secret = Obj(R"({"apiVersion":"v1","kind":"Secret","metadata":{"name":"db"},
    "stringData":{"password":"first"}})");
  absl::StatusOr<std::vector<TargetObject>> prepared = target->Prepare(app_, {cm, secret}, nullptr);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  for (const TargetObject& o : *prepared) {
    ASSERT_TRUE(target->Apply(app_, o, nullptr, absl::Now() + absl::Seconds(30), nullptr).ok());
  }
  // One watch runs (the first kind looked at); the other kind was refused one.
  EXPECT_EQ(target->watch_cache().watch_count(), 1u);
  EXPECT_GT(target->watch_cache().over_cap_count(), 0);
  // Past the cap, the object is still observed right, by a GET each time.
  for (const TargetObject& o : *prepared) {
    ObservedObject seen = target->Observe(app_, o.key, &o);
    EXPECT_TRUE(seen.exists) << o.key.ToString();
    EXPECT_EQ(seen.drift, v1::DRIFT_STATUS_IN_SYNC) << o.key.ToString() << ": " << seen.drift_message;
  }
  // Applied second, so past the cap.
  const TargetObject& unwatched = (*prepared)[1];
  int64_t gets = target->client().get_count();
  std::string out;
  std::string patch = unwatched.key.kind == "Secret"
                          ? "secret db -p '{\"stringData\":{\"password\":\"second\"}}'"
                          : "configmap settings -p '{\"data\":{\"color\":\"red\"}}'";
  ASSERT_EQ(Kubectl(absl::StrCat("-n ", ns_.name(), " patch --field-manager=ops-console --type=merge ", patch), &out), 0)
      << out;
  ObservedObject seen = target->Observe(app_, unwatched.key, &unwatched);
  EXPECT_EQ(seen.drift, v1::DRIFT_STATUS_MODIFIED) << seen.drift_message;
  EXPECT_GT(target->client().get_count(), gets) << "the kind past the cap must be read from the server";
}

TEST_F(KubernetesTargetTest, UnreachableClusterIsUnavailableAndABadKubeconfigIsRefused) {
  std::string dir = testing::MakeTempDir("kube-bad");
  std::ofstream(dir + "/kubeconfig") << "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\nclusters:\n"
                                        "- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\n";
  absl::StatusOr<Target*> t = factory_.For(KubeTarget(dir + "/kubeconfig", "", "default"));
  ASSERT_TRUE(t.ok()) << t.status();
  absl::StatusOr<std::vector<TargetObject>> p = (*t)->Prepare(app_, {Obj(kConfigMap)}, nullptr);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kUnavailable) << p.status();
  EXPECT_EQ(factory_.For(KubeTarget(dir + "/missing", "", "")).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(KubernetesTargetTest, TlsVerificationRefusesAServerSignedByAnotherCa) {
  std::string dir = testing::MakeTempDir("kube-otherca");
  // The fixture's kubeconfig with another CA (the client certificate's own, self-signed by no one we trust).
  absl::StatusOr<KubeCredentials> creds = LoadKubeconfig(TestKube().kubeconfig, "");
  ASSERT_TRUE(creds.ok()) << creds.status();
  creds->ca_pem = creds->client_cert_pem;
  absl::StatusOr<std::unique_ptr<KubeClient>> client = KubeClient::Create(*creds);
  ASSERT_TRUE(client.ok());
  absl::StatusOr<KubeResponse> r = (*client)->Request("GET", "/api/v1");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << (r.ok() ? r->body : r.status().ToString());
}

}  // namespace
}  // namespace ferry::deployer::kubernetes
