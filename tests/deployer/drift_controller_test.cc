// DriftController through the Deployer, against fakes.
#include "services/deployer/drift_controller.h"

#include <map>
#include <string>

#include <gtest/gtest.h>
#include <prometheus/metric_family.h>

#include "tests/deployer/logic_harness.h"

namespace ferry::deployer {
namespace {

using testing::Eventually;
using testing::LogicHarness;
using testing::LogicPlan;

// The value of ferry_drifted_objects{application=app,environment="dev"}; -1 when absent.
double Drifted(LogicHarness& h, const std::string& app) {
  for (const prometheus::MetricFamily& f : h.registry.Collect()) {
    if (f.name != "ferry_drifted_objects") continue;
    for (const prometheus::ClientMetric& m : f.metric) {
      std::map<std::string, std::string> labels;
      for (const prometheus::ClientMetric::Label& l : m.label) labels[l.name] = l.value;
      if (labels["application"] == app && labels["environment"] == "dev") return m.gauge.value;
    }
  }
  return -1;
}

ObjectKey Key(const std::string& name) { return ObjectKey{"ferry.dev", "ConfigFile", "", name}; }

// Deploys `names` to (app, dev) and waits for it; sets selfHeal first.
std::string DeployNow(LogicHarness& h, const std::string& plan_id, const std::string& app,
                      const std::vector<std::string>& names, bool self_heal) {
  v1::Plan p = LogicPlan(plan_id, app, names);
  p.mutable_sync_policy()->set_self_heal(self_heal);
  absl::StatusOr<std::string> id = h.deployer->HandlePlan(p);
  EXPECT_TRUE(id.ok()) << id.status();
  h.deployer->WaitIdle();
  EXPECT_EQ(h.StateOf(*id), v1::DEPLOYMENT_STATE_SUCCEEDED);
  return *id;
}

// The bug of issue 14: a self-heal ran on the maintenance thread, so while
// one application healed (up to its health timeout) no other application's
// orphans were recovered, outcomes reported or drift checked. Heals now run
// on scheduler workers.
TEST(DriftControllerTest, WhileOneApplicationHealsTheMaintenanceLoopKeepsServingTheOthers) {
  DeployerOptions o = LogicHarness::Options();
  o.tick = absl::Milliseconds(10);
  o.drift_interval = absl::Milliseconds(20);
  LogicHarness h(o);
  DeployNow(h, "p-heal", "healer", {"conf"}, /*self_heal=*/true);
  DeployNow(h, "p-watch", "watched", {"conf"}, /*self_heal=*/false);
  h.target.SetDrift("healer", Key("conf"), v1::DRIFT_STATUS_MODIFIED);
  h.target.HoldApplies("healer");
  h.deployer->Start();
  // The maintenance loop runs every tick of the fake clock: each poll below
  // moves it one tick on.
  auto ticking = [&](auto done) {
    return Eventually([&] {
      h.clock.Advance(o.tick);
      return done();
    });
  };
  ASSERT_TRUE(ticking([&] { return h.target.WaitHeld("healer", absl::Milliseconds(5)); })) << "no heal started";

  // While the heal is in progress: an outcome to report, an orphan to
  // recover and a drift to detect, all of other applications.
  v1::Deployment done;
  done.set_id("dep-other");
  done.set_plan_id("other");
  done.set_application_id("other");
  done.set_environment_id("dev");
  done.set_kind(v1::DEPLOYMENT_KIND_ROLLOUT);
  done.set_state(v1::DEPLOYMENT_STATE_PENDING);
  ASSERT_TRUE(h.store.Create(done, LogicPlan("other", "other", {"conf"}), {}).ok());
  done.set_state(v1::DEPLOYMENT_STATE_SUCCEEDED);
  ASSERT_TRUE(h.store.Update(done, {}, nullptr, nullptr).ok());
  v1::Deployment orphan = done;
  orphan.set_id("dep-orphan");
  orphan.set_plan_id("orphan");
  orphan.set_application_id("orphan");
  orphan.set_state(v1::DEPLOYMENT_STATE_PENDING);
  ASSERT_TRUE(h.store.Create(orphan, LogicPlan("orphan", "orphan", {"conf"}), {}).ok());
  h.target.SetDrift("watched", Key("conf"), v1::DRIFT_STATUS_MISSING);

  EXPECT_TRUE(ticking([&] {
    for (const v1::ReportPlanResultRequest& r : h.plans.results()) {
      if (r.deployment_id() == "dep-other") return true;
    }
    return false;
  })) << "no outcome was reported while a heal ran";
  EXPECT_TRUE(ticking([&] {
    v1::DeploymentState s = h.StateOf("dep-orphan");
    return s != v1::DEPLOYMENT_STATE_PENDING && s != v1::DEPLOYMENT_STATE_RUNNING;
  }))
      << "no orphan was recovered while a heal ran";
  EXPECT_TRUE(ticking([&] { return h.CountAction(v1::AUDIT_ACTION_DRIFT_DETECTED) == 2; }))
      << "no other application's drift was detected while a heal ran";

  h.target.ReleaseApplies("healer");
  EXPECT_TRUE(ticking([&] { return h.CountAction(v1::AUDIT_ACTION_DRIFT_HEALED) == 1; }));
  h.deployer->Stop();
  int heals = 0;
  absl::StatusOr<DeploymentPage> page = h.store.List(DeploymentFilter{"healer", "dev", {}, false, 100, 0});
  ASSERT_TRUE(page.ok());
  for (const v1::Deployment& d : page->deployments) {
    if (d.kind() != v1::DEPLOYMENT_KIND_SELF_HEAL) continue;
    ++heals;
    EXPECT_EQ(d.state(), v1::DEPLOYMENT_STATE_SUCCEEDED);
  }
  EXPECT_GE(heals, 1);
  EXPECT_EQ(h.target.max_concurrent_applies("healer"), 1);
}

TEST(DriftControllerTest, ADriftEpisodeIsRecordedOnceAndHealedOnlyWithSelfHeal) {
  LogicHarness h;
  DeployNow(h, "p1", "web", {"a", "b"}, /*self_heal=*/false);
  h.target.SetDrift("web", Key("a"), v1::DRIFT_STATUS_MODIFIED);
  h.deployer->DriftPass(true);
  h.deployer->WaitIdle();
  h.deployer->DriftPass(true);
  h.deployer->WaitIdle();
  EXPECT_EQ(h.CountAction(v1::AUDIT_ACTION_DRIFT_DETECTED), 1);
  EXPECT_EQ(h.CountAction(v1::AUDIT_ACTION_DRIFT_HEALED), 0);
  EXPECT_EQ(h.target.applied("web").size(), 2u) << "drift was healed without selfHeal";
  EXPECT_EQ(Drifted(h, "web"), 1) << "the unhealed object is not counted";
  h.target.SetDrift("web", Key("a"), v1::DRIFT_STATUS_IN_SYNC);
  h.deployer->DriftPass(true);
  EXPECT_EQ(Drifted(h, "web"), 0) << "drift put right by hand is still counted";
}

// Issue #23: every maintenance tick (each second) read and parsed every
// managed application and read the global drift settings once per due
// application: at 10,000 applications an idle deployer spent more on those
// reads than on checking. A pass now walks a list at most list_refresh old
// (10 s, or the drift interval when shorter) and reads the global settings
// once; a due application's own record is read again under its lock, so a
// deployment made since the list was read is what the check goes by.
TEST(DriftControllerTest, PassesReuseTheListButCheckEachApplicationAsLastDeployed) {
  DeployerOptions o = LogicHarness::Options();
  o.drift_interval = absl::Seconds(30);  // list kept 30 s
  LogicHarness h(o);
  DeployNow(h, "p1", "web", {"a"}, /*self_heal=*/false);
  DeployNow(h, "p1", "api", {"a"}, /*self_heal=*/false);
  const int lists = h.store.managed_list_reads();
  const int globals = h.store.global_drift_settings_reads();
  h.deployer->DriftPass(false);  // reads the list; both are due: one global read
  EXPECT_EQ(h.store.managed_list_reads(), lists + 1);
  EXPECT_EQ(h.store.global_drift_settings_reads(), globals + 1);
  for (int i = 0; i < 5; ++i) {
    h.clock.Advance(absl::Seconds(1));
    h.deployer->DriftPass(false);
  }
  EXPECT_EQ(h.store.managed_list_reads(), lists + 1) << "the list was read again within list_refresh";
  EXPECT_EQ(h.store.global_drift_settings_reads(), globals + 1) << "nothing was due, yet settings were read";

  // A new deployment turns selfHeal on; the list read before it still says
  // off. The check goes by the application's record as now stored.
  DeployNow(h, "p2", "web", {"a"}, /*self_heal=*/true);
  h.target.SetDrift("web", Key("a"), v1::DRIFT_STATUS_MODIFIED);
  h.clock.Advance(absl::Seconds(31));  // due again; the list is 36 s old: read again...
  h.deployer->DriftPass(false);
  h.deployer->WaitIdle();
  EXPECT_EQ(h.store.managed_list_reads(), lists + 2);
  EXPECT_EQ(h.CountAction(v1::AUDIT_ACTION_DRIFT_HEALED), 1);
}

// Issue #23: the list says who may be due, and an application is first due
// when first listed, so it is read once per drift interval, at most 30 s
// apart (every 10 s, it was a third of an idle deployer's own reads at
// 10,000 applications).
TEST(DriftControllerTest, TheListIsReadOncePerDriftIntervalAtMostThirtySecondsApart) {
  for (absl::Duration interval : {absl::Seconds(30), absl::Minutes(5)}) {
    DeployerOptions o = LogicHarness::Options();
    o.drift_interval = interval;
    LogicHarness h(o);
    DeployNow(h, "p1", "web", {"a"}, /*self_heal=*/false);
    h.deployer->DriftPass(false);
    const int lists = h.store.managed_list_reads();
    for (int i = 0; i < 29; ++i) {
      h.clock.Advance(absl::Seconds(1));
      h.deployer->DriftPass(false);
    }
    EXPECT_EQ(h.store.managed_list_reads(), lists) << "read again within " << interval;
    h.clock.Advance(absl::Seconds(1));
    h.deployer->DriftPass(false);
    EXPECT_EQ(h.store.managed_list_reads(), lists + 1) << "not read again after 30 s (interval " << interval << ")";
    // An application deployed since is checked once the list is read again.
    DeployNow(h, "p2", "api", {"a"}, /*self_heal=*/false);
    h.target.SetDrift("api", Key("a"), v1::DRIFT_STATUS_MODIFIED);
    h.clock.Advance(absl::Seconds(30));
    h.deployer->DriftPass(false);
    h.deployer->WaitIdle();
    EXPECT_EQ(h.CountAction(v1::AUDIT_ACTION_DRIFT_DETECTED), 1) << interval;
  }
}

// Issue #23: each pass (every second) resolved the target of every
// application not yet due, to ask it whether a watch saw a change: at
// 10,000 applications, 10,000 target lookups a second (a host target checks
// its root_dir on the filesystem) to find the 333 due. The targets are
// resolved once per list read; a change a target saw still makes its
// application due before its interval.
TEST(DriftControllerTest, APassResolvesTargetsOncePerListAndStillSeesWatchedChanges) {
  DeployerOptions o = LogicHarness::Options();
  o.drift_interval = absl::Seconds(30);  // list kept 30 s
  LogicHarness h(o);
  for (std::string app : {"web", "api", "db", "cache"}) DeployNow(h, "p-" + app, app, {"a"}, /*self_heal=*/true);
  h.deployer->DriftPass(false);  // reads the list; all four due and checked
  h.deployer->WaitIdle();
  const int lookups = h.target.for_calls();
  for (int i = 0; i < 5; ++i) {
    h.clock.Advance(absl::Seconds(1));
    h.deployer->DriftPass(false);
  }
  EXPECT_EQ(h.target.for_calls(), lookups) << "passes with nothing due resolved targets";

  // Not due for another 24 s, but the target saw api's object change.
  h.target.SetDrift("api", Key("a"), v1::DRIFT_STATUS_MODIFIED);
  h.target.MarkChanged("api", "dev");
  h.clock.Advance(absl::Seconds(1));
  h.deployer->DriftPass(false);
  h.deployer->WaitIdle();
  EXPECT_EQ(h.CountAction(v1::AUDIT_ACTION_DRIFT_HEALED), 1);
}

// The due applications' targets are resolved from their records as read in
// the pass, each configuration once: at 10,000 applications and a 30 s
// interval, 333 resolutions a second (a host target's root checked on the
// filesystem and its workload identity resolved each time) for one target.
TEST(DriftControllerTest, APassResolvesEachTargetConfigurationOnceForAllItsDueApplications) {
  LogicHarness h;
  for (std::string app : {"web", "api", "db", "cache"}) DeployNow(h, "p-" + app, app, {"a"}, /*self_heal=*/false);
  const int before = h.target.for_calls();
  h.deployer->DriftPass(true);  // the list read again, and all four due
  h.deployer->WaitIdle();
  EXPECT_EQ(h.target.for_calls() - before, 2) << "one for the list, one for the pass's four checks";
  EXPECT_EQ(h.CountAction(v1::AUDIT_ACTION_DRIFT_DETECTED), 0);
}

// ...and within list_refresh of the last read, a record changed since is
// still what the check goes by (without the read under the lock, the listed
// selfHeal off left the drift unhealed).
TEST(DriftControllerTest, AStaleListedRecordIsReadAgainBeforeTheCheck) {
  DeployerOptions o = LogicHarness::Options();
  o.drift_interval = absl::Seconds(30);  // list kept 30 s
  LogicHarness h(o);
  v1::DriftSettings often;
  often.set_application_id("web");
  often.set_environment_id("dev");
  often.mutable_interval()->set_seconds(1);
  ASSERT_TRUE(h.store.SaveDriftSettings(often).ok());
  DeployNow(h, "p1", "web", {"a"}, /*self_heal=*/false);
  h.deployer->DriftPass(false);  // lists web with selfHeal off; checked: in sync
  const int lists = h.store.managed_list_reads();
  DeployNow(h, "p2", "web", {"a"}, /*self_heal=*/true);
  h.target.SetDrift("web", Key("a"), v1::DRIFT_STATUS_MODIFIED);
  h.clock.Advance(absl::Seconds(2));  // due (1 s interval); the list is 2 s old
  h.deployer->DriftPass(false);
  h.deployer->WaitIdle();
  EXPECT_EQ(h.store.managed_list_reads(), lists) << "the list was read again";
  EXPECT_EQ(h.CountAction(v1::AUDIT_ACTION_DRIFT_HEALED), 1);
}

// Issue #23: each due application's check read its inputs in a statement of
// its own, under a lock taken and released for it (three round trips): 333
// applications a second at 10,000 and a 30 s interval, most of an idle
// deployer's and PostgreSQL's CPU. A pass now reads its due applications
// together; one in sync is done with that, and only one that shows drift is
// locked and read again.
TEST(DriftControllerTest, APassReadsItsDueApplicationsTogetherAndRereadsOnlyTheDrifted) {
  LogicHarness h;
  DeployNow(h, "p1", "web", {"a", "b"}, /*self_heal=*/false);
  DeployNow(h, "p2", "api", {"a"}, /*self_heal=*/false);
  DeployNow(h, "p3", "db", {"a"}, /*self_heal=*/false);
  const int singles = h.store.drift_input_reads();
  const int batches = h.store.drift_input_batch_reads();
  h.deployer->DriftPass(true);
  EXPECT_EQ(h.store.drift_input_batch_reads(), batches + 1);
  EXPECT_EQ(h.store.drift_input_reads(), singles) << "an application in sync was read on its own";
  EXPECT_EQ(Drifted(h, "web"), 0);

  h.target.SetDrift("api", Key("a"), v1::DRIFT_STATUS_MODIFIED);
  h.deployer->DriftPass(true);
  h.deployer->WaitIdle();
  EXPECT_EQ(h.store.drift_input_batch_reads(), batches + 2);
  EXPECT_EQ(h.store.drift_input_reads(), singles + 1) << "the drifted application was not read again under its lock";
  EXPECT_EQ(h.CountAction(v1::AUDIT_ACTION_DRIFT_DETECTED), 1);
  EXPECT_EQ(Drifted(h, "api"), 1);
  EXPECT_EQ(Drifted(h, "web"), 0);

  // Put right by hand: the next pass finds it in sync from the shared read.
  h.target.SetDrift("api", Key("a"), v1::DRIFT_STATUS_IN_SYNC);
  h.deployer->DriftPass(true);
  EXPECT_EQ(h.store.drift_input_reads(), singles + 1);
  EXPECT_EQ(Drifted(h, "api"), 0) << "drift put right by hand is still counted";
}

// A deployment made between the pass's read and the check (the read says
// selfHeal off, the new deployment turned it on) is what the check goes by:
// the drift it shows is looked at again under the lock, as now stored.
TEST(DriftControllerTest, ADeploymentMadeAfterThePassReadIsWhatTheCheckGoesBy) {
  LogicHarness h;
  DeployNow(h, "p1", "web", {"a"}, /*self_heal=*/false);
  bool deployed = false;
  h.store.AfterDriftInputBatchRead([&] {
    if (deployed) return;
    deployed = true;
    DeployNow(h, "p2", "web", {"a"}, /*self_heal=*/true);
    h.target.SetDrift("web", Key("a"), v1::DRIFT_STATUS_MODIFIED);
  });
  h.deployer->DriftPass(true);
  h.deployer->WaitIdle();
  h.store.AfterDriftInputBatchRead(nullptr);
  ASSERT_TRUE(deployed);
  EXPECT_EQ(h.CountAction(v1::AUDIT_ACTION_DRIFT_HEALED), 1) << "the check went by the record read before p2";
}

TEST(DriftControllerTest, SelfHealReappliesOnlyTheDriftedObjectsThroughTheScheduler) {
  LogicHarness h;
  DeployNow(h, "p1", "web", {"a", "b"}, /*self_heal=*/true);
  h.target.SetDrift("web", Key("b"), v1::DRIFT_STATUS_MISSING);
  h.deployer->DriftPass(true);
  h.deployer->WaitIdle();
  EXPECT_EQ(h.CountAction(v1::AUDIT_ACTION_DRIFT_DETECTED), 1);
  EXPECT_EQ(h.CountAction(v1::AUDIT_ACTION_DRIFT_HEALED), 1);
  EXPECT_EQ(h.target.applied("web"), (std::vector<std::string>{"ConfigFile/a", "ConfigFile/b", "ConfigFile/b"}));
  EXPECT_EQ(h.store.healed().size(), 1u);
}

// A heal applied the drifted objects in the store's key order, not in the
// order the target prepared them: on Kubernetes, with a whole application
// gone (a new cluster, a deleted namespace), the ConfigMap came before its
// Namespace, failed with "namespaces not found", and every retried heal
// failed the same way (the second `make up-kube`). The heal now keeps the
// live deployment's order.
TEST(DriftControllerTest, AHealAppliesInTheOrderTheLiveDeploymentApplied) {
  LogicHarness h;
  DeployNow(h, "p1", "web", {"zz-namespace", "b", "a"}, /*self_heal=*/true);
  ASSERT_EQ(h.target.applied("web"),
            (std::vector<std::string>{"ConfigFile/zz-namespace", "ConfigFile/b", "ConfigFile/a"}));
  for (const char* name : {"a", "b", "zz-namespace"}) {
    h.target.SetDrift("web", Key(name), v1::DRIFT_STATUS_MISSING);
  }
  h.deployer->DriftPass(true);
  h.deployer->WaitIdle();
  EXPECT_EQ(h.CountAction(v1::AUDIT_ACTION_DRIFT_HEALED), 3);
  std::vector<std::string> applied = h.target.applied("web");
  ASSERT_EQ(applied.size(), 6u);
  EXPECT_EQ(std::vector<std::string>(applied.begin() + 3, applied.end()),
            (std::vector<std::string>{"ConfigFile/zz-namespace", "ConfigFile/b", "ConfigFile/a"}))
      << "the heal did not apply in the live deployment's order";
}

TEST(DriftControllerTest, AHealWaitsForAFreeSlotInsteadOfBlockingThePass) {
  DeployerOptions o = LogicHarness::Options();
  o.max_concurrent_deployments = 1;
  LogicHarness h(o);
  DeployNow(h, "p1", "web", {"a"}, /*self_heal=*/true);
  h.target.SetDrift("web", Key("a"), v1::DRIFT_STATUS_MODIFIED);
  h.target.HoldApplies("busy");
  ASSERT_TRUE(h.deployer->HandlePlan(LogicPlan("p-busy", "busy", {"x"})).ok());
  ASSERT_TRUE(h.target.WaitHeld("busy", absl::Seconds(5)));
  h.deployer->DriftPass(true);  // Returns: the only slot is taken.
  EXPECT_EQ(h.CountAction(v1::AUDIT_ACTION_DRIFT_DETECTED), 1);
  h.target.ReleaseApplies("busy");
  h.deployer->WaitIdle();
  EXPECT_EQ(h.CountAction(v1::AUDIT_ACTION_DRIFT_HEALED), 0);
  h.deployer->DriftPass(true);
  h.deployer->WaitIdle();
  EXPECT_EQ(h.CountAction(v1::AUDIT_ACTION_DRIFT_DETECTED), 1) << "same episode";
  EXPECT_EQ(h.CountAction(v1::AUDIT_ACTION_DRIFT_HEALED), 1);
}

// Heals of `app` recorded so far.
int Heals(LogicHarness& h, const std::string& app) {
  absl::StatusOr<DeploymentPage> page = h.store.List(DeploymentFilter{app, "dev", {}, false, 100, 0});
  int n = 0;
  for (const v1::Deployment& d : page->deployments) n += d.kind() == v1::DEPLOYMENT_KIND_SELF_HEAL;
  return n;
}

TEST(DriftControllerTest, FailedHealsAreRetriedOnlyAfterAGrowingBackoff) {
  LogicHarness h;
  DeployNow(h, "p1", "web", {"a"}, /*self_heal=*/true);
  v1::UpdateDriftSettingsRequest settings;
  *settings.mutable_settings()->mutable_heal_backoff()->mutable_initial() = ToProtoDuration(absl::Minutes(1));
  settings.mutable_settings()->mutable_heal_backoff()->set_factor(3);
  ASSERT_TRUE(h.deployer->UpdateDriftSettings(settings).ok());
  h.target.SetDrift("web", Key("a"), v1::DRIFT_STATUS_MODIFIED);
  h.target.FailApplies("web", true);
  auto pass = [&] {
    h.deployer->DriftPass(true);
    h.deployer->WaitIdle();
    return Heals(h, "web");
  };
  EXPECT_EQ(pass(), 1);
  EXPECT_EQ(pass(), 1) << "retried before the backoff";
  EXPECT_EQ(Drifted(h, "web"), 1) << "drift whose heal failed is not counted";
  h.clock.Advance(absl::Seconds(61));
  EXPECT_EQ(pass(), 2);
  h.clock.Advance(absl::Seconds(61));
  EXPECT_EQ(pass(), 2) << "the second backoff did not grow";
  h.clock.Advance(absl::Minutes(2));
  EXPECT_EQ(pass(), 3);
  h.target.FailApplies("web", false);
  h.clock.Advance(absl::Minutes(10));
  EXPECT_EQ(pass(), 4);
  EXPECT_EQ(h.CountAction(v1::AUDIT_ACTION_DRIFT_DETECTED), 1) << "one episode throughout";
  EXPECT_EQ(h.CountAction(v1::AUDIT_ACTION_DRIFT_HEALED), 1);
  EXPECT_EQ(pass(), 4) << "healed drift was healed again";
  EXPECT_EQ(Drifted(h, "web"), 0) << "healed drift is still counted";
}

TEST(DriftControllerTest, AnApplicationIsObservedOnlyWhenItsIntervalHasPassed) {
  LogicHarness h;
  DeployNow(h, "p1", "web", {"a"}, /*self_heal=*/false);
  h.deployer->DriftPass(false);  // Never checked: due now.
  h.target.SetDrift("web", Key("a"), v1::DRIFT_STATUS_MODIFIED);
  h.deployer->DriftPass(false);
  EXPECT_EQ(h.CountAction(v1::AUDIT_ACTION_DRIFT_DETECTED), 0) << "observed before its interval (30s) passed";
  h.clock.Advance(absl::Seconds(31));
  h.deployer->DriftPass(false);
  EXPECT_EQ(h.CountAction(v1::AUDIT_ACTION_DRIFT_DETECTED), 1);
}

TEST(DriftControllerTest, AnApplicationWhoseSettingsCannotBeReadIsNotHealed) {
  LogicHarness h;
  DeployNow(h, "p1", "web", {"a"}, /*self_heal=*/true);
  h.target.SetDrift("web", Key("a"), v1::DRIFT_STATUS_MODIFIED);
  h.store.FailDriftSettings(absl::UnavailableError("database down"));
  h.deployer->DriftPass(true);
  h.deployer->WaitIdle();
  EXPECT_EQ(Heals(h, "web"), 0);
  EXPECT_EQ(h.CountAction(v1::AUDIT_ACTION_DRIFT_DETECTED), 0);
}

}  // namespace
}  // namespace ferry::deployer
