// The watch cache across a gap in its connection, against the `kube_nocache`
// fixture: a real kube-apiserver started with --watch-cache=false, so its
// watches are served by etcd and a watch from a version compacted away is
// answered "410 Gone" (the default server answers such a watch from its own
// cache). A CutProxy between the target and the server plays the lost
// connection; the tests compact etcd themselves through its HTTP gateway.
#include <stdio.h>

#include <fstream>
#include <sstream>

#include "services/deployer/kubernetes/kubernetes_target.h"
#include "tests/deployer/kubernetes/cut_proxy.h"
#include "tests/deployer/kubernetes/kube_deployer_harness.h"

namespace ferry::deployer::testing_kube {
namespace {

using kubernetes::CutProxy;
using kubernetes::KubernetesTarget;
using kubernetes::KubernetesTargetFactory;

// The fixture's kubeconfig with the server replaced by the proxy's address.
std::string ProxiedKubeconfig(int port) {
  std::ifstream in(TestKube().kubeconfig);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  size_t at = text.find(TestKube().server);
  EXPECT_NE(at, std::string::npos);
  if (at != std::string::npos) text.replace(at, TestKube().server.size(), absl::StrCat("https://127.0.0.1:", port));
  std::string path = ferry::testing::MakeTempDir("kube-proxied") + "/kubeconfig";
  std::ofstream(path) << text;
  return path;
}

std::string Run(const std::string& command) {
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return "";
  std::string out;
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

// Compacts etcd up to its current revision, after two more writes (an
// unlabelled ConfigMap in `ns`), so that any version a watcher held before
// is compacted away (etcd keeps the compaction revision itself).
void CompactEtcd(const std::string& ns) {
  std::string out;
  ASSERT_EQ(Kubectl(absl::StrCat("-n ", ns, " create configmap bump --from-literal=n=1"), &out), 0) << out;
  ASSERT_EQ(Kubectl(absl::StrCat("-n ", ns, " patch configmap bump --type=merge -p '{\"data\":{\"n\":\"2\"}}'"), &out),
            0)
      << out;
  std::string range =
      Run(absl::StrCat("curl -s --max-time 30 -X POST ", TestKube().etcd, "/v3/kv/range -d '{\"key\":\"AA==\"}'"));
  absl::StatusOr<json> r = ParseJson(range);
  ASSERT_TRUE(r.ok() && r->contains("header")) << range;
  std::string revision = (*r)["header"].value("revision", "");
  ASSERT_FALSE(revision.empty()) << range;
  std::string compacted = Run(absl::StrCat("curl -s --max-time 60 -X POST ", TestKube().etcd,
                                           "/v3/kv/compaction -d '{\"revision\":\"", revision,
                                           "\",\"physical\":true}'"));
  ASSERT_NE(compacted.find("header"), std::string::npos) << compacted;
}

template <typename F>
bool Eventually(F done, absl::Duration within = absl::Seconds(60)) {
  absl::Time until = absl::Now() + within;
  while (!done()) {
    if (absl::Now() > until) return false;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return true;
}

TargetObject Cm(const std::string& name, const std::string& value) {
  return TargetObject{ObjectKey{"", "ConfigMap", "", name}, ConfigMap(name, value).dump(), "app/" + name + ".yaml", 0};
}

class WatchGapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    v1::DeployTarget t;
    t.set_kind(v1::TARGET_KIND_KUBERNETES);
    t.mutable_kubernetes()->set_kubeconfig(kubeconfig_);
    t.mutable_kubernetes()->set_namespace_(ns_.name());
    absl::StatusOr<Target*> target = factory_.For(t);
    ASSERT_TRUE(target.ok()) << target.status();
    target_ = static_cast<KubernetesTarget*>(*target);
  }

  void Apply(const AppScope& app, const TargetObject& o) {
    absl::StatusOr<std::vector<TargetObject>> prepared = target_->Prepare(app, {o}, nullptr);
    ASSERT_TRUE(prepared.ok()) << prepared.status();
    for (const TargetObject& p : *prepared) {
      absl::Status s = target_->Apply(app, p, nullptr, absl::Now() + absl::Seconds(60), nullptr);
      ASSERT_TRUE(s.ok()) << s;
    }
  }

  std::string Kube(const std::string& args) {
    std::string out;
    EXPECT_EQ(Kubectl(absl::StrCat("-n ", ns_.name(), " ", args), &out), 0) << args << ": " << out;
    return out;
  }

  TestNamespace ns_;
  CutProxy proxy_{kubernetes::HostPort(TestKube().server).first, kubernetes::HostPort(TestKube().server).second};
  std::string kubeconfig_ = ProxiedKubeconfig(proxy_.port());
  KubernetesTargetFactory factory_{"/nonexistent", "", ""};
  KubernetesTarget* target_ = nullptr;
  AppScope web_{"web", "prod"}, api_{"api", "prod"}, db_{"db", "prod"}, batch_{"batch", "prod"};
};

// A lost connection is watched again from the last version seen: the server
// replays what was missed as events, no list is made, and the application
// whose object changed meanwhile is woken by the replayed event.
TEST_F(WatchGapTest, AReconnectWatchesOnFromTheLastVersionAndTheMissedEventWakesTheApplication) {
  Apply(web_, Cm("a", "1"));
  ASSERT_TRUE(target_->Observe(web_, Cm("a", "1").key, nullptr).exists);  // The first list is made.
  target_->TakeChanged(web_);
  int64_t lists = target_->watch_cache().list_count();

  proxy_.Cut();
  ASSERT_TRUE(Eventually([&] { return proxy_.refused() > 0; })) << "the watcher never tried to reconnect";
  Kube("patch configmap a --field-manager=ops-console --type=merge -p '{\"data\":{\"value\":\"edited\"}}'");
  EXPECT_FALSE(target_->TakeChanged(web_));
  proxy_.Restore();

  EXPECT_TRUE(Eventually([&] { return target_->TakeChanged(web_); })) << "the missed change did not wake web";
  TargetObject a = Cm("a", "1");
  ObservedObject o = target_->Observe(web_, a.key, &a);
  EXPECT_EQ(o.drift, v1::DRIFT_STATUS_MODIFIED) << o.drift_message;
  EXPECT_NE(o.live_json.find("edited"), std::string::npos) << o.live_json;
  EXPECT_EQ(target_->watch_cache().list_count(), lists) << "a reconnect listed again instead of watching on";
  EXPECT_EQ(target_->watch_cache().gone_count(), 0);
}

// The version the watcher held was compacted away while it was cut off:
// the server answers 410 Gone, the watcher lists again and compares the
// list with its cache, waking exactly the applications whose objects
// changed, appeared or vanished; the cache is right afterwards.
TEST_F(WatchGapTest, AVersionCompactedAwayIsListedAgainAndWakesTheApplicationsWhoseObjectsChanged) {
  Apply(web_, Cm("a", "1"));
  Apply(api_, Cm("c", "1"));
  Apply(db_, Cm("d", "1"));
  for (const char* name : {"a", "c", "d"}) {
    ASSERT_TRUE(target_->Observe(web_, Cm(name, "1").key, nullptr).exists) << name;
  }
  for (const AppScope& app : {web_, api_, db_, batch_}) target_->TakeChanged(app);
  int64_t lists = target_->watch_cache().list_count();

  proxy_.Cut();
  ASSERT_TRUE(Eventually([&] { return proxy_.refused() > 0; })) << "the watcher never tried to reconnect";
  Kube("patch configmap a --field-manager=ops-console --type=merge -p '{\"data\":{\"value\":\"edited\"}}'");
  Kube("delete configmap c");
  Kube(absl::StrCat("create configmap e --from-literal=value=new"));
  Kube(absl::StrCat("label configmap e ", kubernetes::kApplicationLabel, "=batch ", kubernetes::kEnvironmentLabel,
                    "=prod"));
  CompactEtcd(ns_.name());
  proxy_.Restore();

  ASSERT_TRUE(Eventually([&] { return target_->watch_cache().gone_count() > 0; }))
      << "no 410 Gone seen; lists " << target_->watch_cache().list_count();
  ASSERT_TRUE(Eventually([&] { return target_->watch_cache().relist_change_count() >= 3; }))
      << target_->watch_cache().relist_change_count();
  EXPECT_GT(target_->watch_cache().list_count(), lists);
  EXPECT_TRUE(target_->TakeChanged(web_)) << "a changed";
  EXPECT_TRUE(target_->TakeChanged(api_)) << "c deleted";
  EXPECT_TRUE(target_->TakeChanged(batch_)) << "e appeared";
  EXPECT_FALSE(target_->TakeChanged(db_)) << "d did not change";

  // The cache after the re-list: a's new value, c gone, d unchanged, read
  // from the watch (no GET).
  int64_t gets = target_->client().get_count();
  TargetObject a = Cm("a", "1");
  ObservedObject o = target_->Observe(web_, a.key, &a);
  EXPECT_EQ(o.drift, v1::DRIFT_STATUS_MODIFIED) << o.drift_message;
  EXPECT_NE(o.live_json.find("edited"), std::string::npos) << o.live_json;
  TargetObject d = Cm("d", "1");
  EXPECT_EQ(target_->Observe(db_, d.key, &d).drift, v1::DRIFT_STATUS_IN_SYNC);
  EXPECT_EQ(target_->client().get_count(), gets);
  EXPECT_FALSE(target_->Observe(api_, Cm("c", "1").key, nullptr).exists);
  // And the watch runs again: a later change arrives as an event.
  Kube("patch configmap d --field-manager=ops-console --type=merge -p '{\"data\":{\"value\":\"later\"}}'");
  EXPECT_TRUE(Eventually([&] { return target_->TakeChanged(db_); }));
}

// The deployer with a one-hour drift interval: a change made while the
// watch was cut off, its version compacted away, is found by the drift pass
// within moments of the re-list (the re-list wakes the application), not
// an hour later.
class KubernetesDeployerWatchGapTest : public KubernetesDeployerTest {
 protected:
  KubernetesDeployerWatchGapTest() {
    drift_interval_ = absl::Hours(1);
    kubeconfig_ = ProxiedKubeconfig(proxy_.port());
  }
  CutProxy proxy_{kubernetes::HostPort(TestKube().server).first, kubernetes::HostPort(TestKube().server).second};
};

TEST_F(KubernetesDeployerWatchGapTest, DriftMadeDuringAWatchGapIsFoundWithinSecondsOfTheRelist) {
  v1::Plan plan = Plan("p1", {ConfigMap("a", "1")}, '1');
  v1::Deployment d1 = Deploy(plan);
  ASSERT_EQ(d1.state(), v1::DEPLOYMENT_STATE_SUCCEEDED) << d1.message();
  deployer_->DriftPass(/*force=*/false);  // Due once (never checked): next check in an hour.
  deployer_->WaitIdle();
  ASSERT_EQ(CountAction(v1::AUDIT_ACTION_DRIFT_DETECTED), 0);
  absl::StatusOr<Target*> t = kube_.For(plan.target());
  ASSERT_TRUE(t.ok()) << t.status();
  kubernetes::WatchCache& watch = static_cast<KubernetesTarget*>(*t)->watch_cache();
  ASSERT_GE(watch.list_count(), 1);
  int64_t lists = watch.list_count();

  proxy_.Cut();
  ASSERT_TRUE(Eventually([&] { return proxy_.refused() > 0; })) << "the watcher never tried to reconnect";
  Kube("patch configmap a --field-manager=ops-console --type=merge -p '{\"data\":{\"value\":\"edited\"}}'");
  CompactEtcd(ns_.name());
  proxy_.Restore();
  ASSERT_TRUE(Eventually([&] { return watch.gone_count() > 0 && watch.list_count() > lists; }))
      << "no re-list after 410 Gone";
  absl::Time relisted = absl::Now();
  EXPECT_TRUE(Eventually(
      [&] {
        deployer_->DriftPass(/*force=*/false);
        deployer_->WaitIdle();
        return CountAction(v1::AUDIT_ACTION_DRIFT_DETECTED) > 0;
      },
      absl::Seconds(30)))
      << "the change made during the gap was not found (the re-list did not wake the application)";
  EXPECT_LT(absl::Now() - relisted, absl::Seconds(30));
  EXPECT_NE(AuditText().find("/data/value"), std::string::npos) << AuditText();
}

}  // namespace
}  // namespace ferry::deployer::testing_kube
