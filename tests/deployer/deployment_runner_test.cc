// DeploymentRunner against fakes: a deployer that dies at any step boundary
// of a rollout is resumed by the next one, which finishes it; an
// interruption is never a failure, never rolls back and never pins.
#include "services/deployer/deployment_runner.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "services/deployer/deployment_state.h"
#include "tests/deployer/fake_deployment_store.h"
#include "tests/deployer/fake_target.h"
#include "tests/support/fake_clock.h"

namespace ferry::deployer {
namespace {

using testing::FakeDeploymentStore;
using testing::FakeTarget;

struct Obj {
  std::string name;
  int wave;
  std::string version;
};

v1::Plan Spec(const std::string& id, char sha, const std::vector<Obj>& objects) {
  v1::Plan p;
  p.set_id(id);
  p.set_application_id("web");
  p.set_environment_id("dev");
  p.mutable_target_revision()->set_repository_id("repo");
  p.mutable_target_revision()->set_sha(std::string(40, sha));
  for (const Obj& o : objects) {
    v1::Manifest* m = p.add_manifests();
    m->mutable_object()->set_group("ferry.dev");
    m->mutable_object()->set_kind("ConfigFile");
    m->mutable_object()->set_name(o.name);
    m->set_json(absl::StrCat("{\"kind\":\"ConfigFile\",\"metadata\":{\"name\":\"", o.name, "\"},\"spec\":\"", o.version,
                             "\"}"));
    m->set_wave(o.wave);
  }
  p.mutable_target()->set_kind(v1::TARGET_KIND_HOST);
  p.mutable_sync_policy()->set_automated(true);
  p.mutable_sync_policy()->set_prune(true);
  p.mutable_health_timeout()->set_seconds(10);
  p.mutable_decision()->set_automatic(true);
  return p;
}

v1::Deployment Pending(const v1::Plan& spec) {
  v1::Deployment d;
  d.set_id("dep-" + spec.id());
  d.set_application_id("web");
  d.set_environment_id("dev");
  d.set_plan_id(spec.id());
  d.set_kind(v1::DEPLOYMENT_KIND_ROLLOUT);
  d.set_state(v1::DEPLOYMENT_STATE_PENDING);
  *d.mutable_revision() = spec.target_revision();
  d.mutable_actor()->set_id("ferry");
  return d;
}

ObjectKey KeyOf(const std::string& name) { return ObjectKey{"ferry.dev", "ConfigFile", "", name}; }

// v1: keep, a (wave 0); b, gone (wave 1).
v1::Plan V1() { return Spec("p1", '1', {{"keep", 0, "same"}, {"a", 0, "v1"}, {"b", 1, "v1"}, {"gone", 1, "v1"}}); }
// v2: keep unchanged, a and b changed, c new in wave 2, gone pruned.
v1::Plan V2() { return Spec("p2", '2', {{"keep", 0, "same"}, {"a", 0, "v2"}, {"b", 1, "v2"}, {"c", 2, "v2"}}); }

// One deployer's worth of state: the store and target outlive runners,
// as PostgreSQL and the host outlive a deployer process.
struct Rig {
  Rig() : metrics(registry) { target.TrackLiveState(); }

  std::unique_ptr<DeploymentRunner> NewRunner(int max_attempts = 2) {
    RunnerOptions o;
    o.deployer_id = "test";
    o.health_poll = absl::Milliseconds(1);
    o.max_attempts_without_progress = max_attempts;
    return std::make_unique<DeploymentRunner>(&store, &target, &notifier, &metrics, &clock, o);
  }

  v1::Deployment Deploy(const v1::Plan& spec) {
    v1::Deployment d = Pending(spec);
    EXPECT_TRUE(store.Create(d, spec, {}).ok());
    absl::StatusOr<v1::Deployment> done = NewRunner()->Run(d, spec);
    EXPECT_TRUE(done.ok()) << done.status();
    return done.value_or(v1::Deployment());
  }

  FakeDeploymentStore store;
  FakeTarget target;
  DeploymentNotifier notifier;
  prometheus::Registry registry;
  DeployerMetrics metrics;
  ferry::testing::FakeClock clock;
};

// Everything "killed at any boundary, then resumed" must end with.
void ExpectFinishedOnV2(Rig& rig, const std::string& where) {
  SCOPED_TRACE(where);
  absl::StatusOr<v1::Deployment> d = rig.store.Get("dep-p2", true);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->state(), v1::DEPLOYMENT_STATE_SUCCEEDED) << d->message();
  EXPECT_EQ(d->revision().sha(), std::string(40, '2'));
  // Unpinned, nothing rolled back, nothing failed.
  EXPECT_FALSE(rig.store.GetPin("web", "dev")->pinned());
  absl::StatusOr<DeploymentPage> all = rig.store.List(DeploymentFilter{});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->deployments.size(), 2u) << "a rollback was made";
  std::map<std::string, int> keys;
  for (const v1::Event& e : rig.store.events()) {
    EXPECT_NE(e.action(), v1::AUDIT_ACTION_DEPLOYMENT_FAILED) << e.message();
    EXPECT_NE(e.action(), v1::AUDIT_ACTION_DEPLOYMENT_ROLLED_BACK) << e.message();
    EXPECT_NE(e.action(), v1::AUDIT_ACTION_PINNED) << e.message();
    ++keys[e.idempotency_key()];
  }
  // Every step finished and audited, once.
  for (const v1::DeploymentStep& s : d->steps()) {
    EXPECT_NE(s.result(), v1::STEP_RESULT_RUNNING) << s.DebugString();
    EXPECT_NE(s.result(), v1::STEP_RESULT_FAILED) << s.DebugString();
    EXPECT_EQ(keys[absl::StrCat("deployment/dep-p2/step/", s.sequence())], 1) << s.DebugString();
  }
  for (const auto& [key, n] : keys) EXPECT_EQ(n, 1) << key << " audited " << n << " times";
  // Nothing applied twice: each (object, spec) once over both deployments.
  for (const auto& [what, n] : rig.target.apply_counts("web")) EXPECT_EQ(n, 1) << what << " applied " << n << " times";
  // Live, healthy and recorded at v2; the pruned object is gone.
  const v1::Plan v2 = V2();
  for (const v1::Manifest& m : v2.manifests()) {
    ObjectKey key = ObjectKey::FromProto(m.object());
    EXPECT_EQ(rig.target.live("web", key), m.json()) << key.ToString();
    TargetObject o{key, m.json(), "", m.wave()};
    EXPECT_EQ(rig.target.Health(AppScope{"web", "dev"}, o).first, v1::HEALTH_STATUS_HEALTHY);
  }
  EXPECT_EQ(rig.target.live("web", KeyOf("gone")), "");
  absl::StatusOr<std::vector<AppliedObject>> applied = rig.store.Applied("web", "dev");
  ASSERT_TRUE(applied.ok());
  std::map<std::string, std::string> recorded;
  for (const AppliedObject& a : *applied) recorded[a.object.key.name] = a.object.json;
  std::map<std::string, std::string> want;
  for (const v1::Manifest& m : v2.manifests()) want[m.object().name()] = m.json();
  EXPECT_EQ(recorded, want);
}

// The deployer dies right after its k-th write (every write: deployment
// records, steps before and after they run), for every k of a multi-wave
// rollout with a prune; `dies_before_target_acts` says whether the apply or
// delete that follows the last write still happens (death after the target
// acted, before its step was saved) or not (death before it).
void KillAtEveryBoundary(bool dies_before_target_acts) {
  int boundaries = 0;
  for (int k = 0; k < 200; ++k) {
    Rig rig;
    ASSERT_EQ(rig.Deploy(V1()).state(), v1::DEPLOYMENT_STATE_SUCCEEDED);
    v1::Plan spec = V2();
    v1::Deployment d = Pending(spec);
    ASSERT_TRUE(rig.store.Create(d, spec, {}).ok());
    rig.store.CrashAfterWrites(k);
    if (dies_before_target_acts) rig.target.SetGate([&rig](const TargetObject&) { return !rig.store.crashed(); });
    absl::StatusOr<v1::Deployment> first = rig.NewRunner()->Run(d, spec);
    if (first.ok() && rig.store.crashed()) continue;  // Died right after its last write: finished.
    if (first.ok()) {
      // No write failed: k is past the last boundary.
      // 8 writes: 7 steps (apply a, b, c; 3 health checks; the prune)
      // before each runs, the first with the deployment's start and each
      // other with the outcome of the one before, and the end with the last
      // outcome: a kill before every one.
      EXPECT_EQ(boundaries, 8);
      return;
    }
    ++boundaries;
    ASSERT_EQ(first.status().code(), absl::StatusCode::kUnavailable) << first.status();
    // A new deployer starts: the store and the target are as the dead one left them.
    rig.store.Revive();
    rig.target.SetGate(nullptr);
    absl::StatusOr<v1::Deployment> left = rig.store.Get("dep-p2", false);
    ASSERT_TRUE(left.ok());
    ASSERT_FALSE(IsTerminal(left->state())) << "k=" << k;
    absl::StatusOr<v1::Deployment> done = rig.NewRunner()->Recover(*left, spec);
    ASSERT_TRUE(done.ok()) << done.status();
    EXPECT_TRUE(done->recovered());
    ExpectFinishedOnV2(rig, absl::StrCat("killed after write ", k, dies_before_target_acts ? " (before the target acted)" : ""));
    if (::testing::Test::HasFailure()) return;
  }
  FAIL() << "the rollout never ran without a crash";
}

// A plan approved automatically was queued behind a rollout that then
// failed, rolled back and pinned the application; the queued plan ran anyway,
// leaving the environment at the new commit while the application said
// "pinned at" the old one. It is now refused when its turn comes, before
// anything changed; a person's approval still runs.
TEST(DeploymentRunnerTest, AQueuedAutomaticPlanDoesNotRunOnceTheApplicationWasPinned) {
  Rig rig;
  ASSERT_EQ(rig.Deploy(V1()).state(), v1::DEPLOYMENT_STATE_SUCCEEDED);
  v1::Plan queued = V2();
  v1::Deployment d = Pending(queued);
  ASSERT_TRUE(rig.store.Create(d, queued, {}).ok());
  v1::PinState pin;
  pin.set_application_id("web");
  pin.set_environment_id("dev");
  pin.set_pinned(true);
  pin.set_sha(std::string(40, '1'));
  pin.set_reason("automatic rollback of dep-p0");
  ASSERT_TRUE(rig.store.SavePin(pin, {}).ok());
  const std::map<std::string, int> applies = rig.target.apply_counts("web");

  absl::StatusOr<v1::Deployment> done = rig.NewRunner()->Run(d, queued);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state(), v1::DEPLOYMENT_STATE_FAILED);
  EXPECT_NE(done->message().find("refused before anything changed: application \"web\" was pinned at 1111"),
            std::string::npos)
      << done->message();
  EXPECT_NE(done->message().find("ferry app unpin"), std::string::npos);
  EXPECT_EQ(rig.target.apply_counts("web"), applies) << "nothing applied";
  EXPECT_TRUE(rig.store.GetPin("web", "dev")->pinned()) << "the pin stays";

  // Approved by a person: runs although pinned.
  v1::Plan approved = Spec("p3", '3', {{"keep", 0, "same"}, {"a", 0, "v3"}});
  approved.mutable_decision()->set_automatic(false);
  approved.mutable_decision()->mutable_actor()->set_id("alice");
  EXPECT_EQ(rig.Deploy(approved).state(), v1::DEPLOYMENT_STATE_SUCCEEDED);
}

TEST(DeploymentRunnerTest, KilledAtEveryStepBoundaryAfterTheTargetActedTheNextDeployerFinishesTheRollout) {
  KillAtEveryBoundary(false);
}

TEST(DeploymentRunnerTest, KilledAtEveryStepBoundaryBeforeTheTargetActedTheNextDeployerFinishesTheRollout) {
  KillAtEveryBoundary(true);
}

// Issue #23: a step's outcome is saved with the next step's start (or the
// deployment's end), one write where there were two, and never later: when
// the target acts, every step before is saved with its outcome.
TEST(DeploymentRunnerTest, EachOutcomeIsSavedWithTheNextWriteAndBeforeTheTargetActsAgain) {
  Rig rig;
  ASSERT_EQ(rig.Deploy(V1()).state(), v1::DEPLOYMENT_STATE_SUCCEEDED);
  v1::Plan spec = V2();
  v1::Deployment d = Pending(spec);
  ASSERT_TRUE(rig.store.Create(d, spec, {}).ok());
  const int combined_before = rig.store.combined_step_writes();
  const int saves_before = rig.store.step_saves();
  int acts = 0;
  rig.target.SetGate([&](const TargetObject& o) {
    ++acts;
    absl::StatusOr<v1::Deployment> now = rig.store.Get("dep-p2", true);
    EXPECT_TRUE(now.ok()) << now.status();
    if (!now.ok() || now->steps().empty()) return true;
    EXPECT_EQ(now->state(), v1::DEPLOYMENT_STATE_RUNNING) << "its start saved before the target acts";
    // Only the step acting now is RUNNING: the last saved, for this object.
    const v1::DeploymentStep& last = now->steps(now->steps_size() - 1);
    EXPECT_EQ(last.result(), v1::STEP_RESULT_RUNNING) << o.key.ToString();
    EXPECT_EQ(ObjectKey::FromProto(last.object()).ToString(), o.key.ToString());
    for (int i = 0; i + 1 < now->steps_size(); ++i) {
      EXPECT_EQ(now->steps(i).result(), v1::STEP_RESULT_SUCCEEDED) << "acting on " << o.key.ToString() << " with "
                                                                   << now->steps(i).DebugString();
    }
    return true;
  });
  absl::StatusOr<v1::Deployment> done = rig.NewRunner()->Run(d, spec);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state(), v1::DEPLOYMENT_STATE_SUCCEEDED);
  EXPECT_EQ(acts, 4);  // apply a, b, c; delete gone
  // 7 steps, each saved running then finished: 14 step saves in 8 writes
  // (7 starts, the end), each with a step and something more: the first
  // start with the deployment's, the others and the end with an outcome.
  EXPECT_EQ(rig.store.step_saves() - saves_before, 14);
  EXPECT_EQ(rig.store.combined_step_writes() - combined_before, 8);
  ExpectFinishedOnV2(rig, "outcomes saved with the next write");
}

// A run with no step at all still records its start (held for the first
// step's write) before its end, each audited.
TEST(DeploymentRunnerTest, ARunWithNothingToDoRecordsItsStartThenItsEnd) {
  Rig rig;
  v1::Plan empty = Spec("p0", '0', {});
  empty.mutable_sync_policy()->set_prune(false);
  v1::Deployment d = Pending(empty);
  ASSERT_TRUE(rig.store.Create(d, empty, {}).ok());
  absl::StatusOr<v1::Deployment> done = rig.NewRunner()->Run(d, empty);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state(), v1::DEPLOYMENT_STATE_SUCCEEDED) << done->message();
  EXPECT_EQ(rig.store.Get("dep-p0", true)->steps_size(), 0);
  std::vector<std::string> keys;
  for (const v1::Event& e : rig.store.events()) keys.push_back(e.idempotency_key());
  EXPECT_EQ(keys, (std::vector<std::string>{"deployment/dep-p0/started", "deployment/dep-p0/succeeded"}));
  absl::StatusOr<std::optional<ManagedApp>> managed = rig.store.GetManagedApp("web", "dev");
  ASSERT_TRUE(managed.ok() && managed->has_value());
  EXPECT_EQ((*managed)->live_deployment_id, "dep-p0");
}

TEST(DeploymentRunnerTest, AnApplyInterruptedAfterTheTargetMadeItIsRecordedAlreadyLiveNotAppliedAgain) {
  Rig rig;
  ASSERT_EQ(rig.Deploy(V1()).state(), v1::DEPLOYMENT_STATE_SUCCEEDED);
  v1::Plan spec = V2();
  v1::Deployment d = Pending(spec);
  ASSERT_TRUE(rig.store.Create(d, spec, {}).ok());
  // Dies when it would record that "a" (wave 0, changed) was applied.
  rig.target.SetGate([&rig](const TargetObject& o) {
    if (o.key.name == "a") rig.store.CrashAfterWrites(0);
    return true;
  });
  ASSERT_FALSE(rig.NewRunner()->Run(d, spec).ok());
  rig.store.Revive();
  rig.target.SetGate(nullptr);
  absl::StatusOr<v1::Deployment> done = rig.NewRunner()->Recover(*rig.store.Get("dep-p2", false), spec);
  ASSERT_TRUE(done.ok()) << done.status();
  ExpectFinishedOnV2(rig, "killed between applying a and recording it");
  absl::StatusOr<v1::Deployment> with_steps = rig.store.Get("dep-p2", true);
  int interrupted = 0, already_live = 0;
  for (const v1::DeploymentStep& s : with_steps->steps()) {
    if (s.message().find("interrupted") != std::string::npos) {
      ++interrupted;
      EXPECT_EQ(s.result(), v1::STEP_RESULT_SKIPPED);
      EXPECT_EQ(s.object().name(), "a");
    }
    if (s.message().find("already live at this revision (applied") != std::string::npos) {
      ++already_live;
      EXPECT_EQ(s.result(), v1::STEP_RESULT_SUCCEEDED);
      EXPECT_EQ(s.object().name(), "a");
    }
  }
  EXPECT_EQ(interrupted, 1);
  EXPECT_EQ(already_live, 1);
}

TEST(DeploymentRunnerTest, ARealFailureAfterResumingStillRollsBackAndPins) {
  Rig rig;
  ASSERT_EQ(rig.Deploy(V1()).state(), v1::DEPLOYMENT_STATE_SUCCEEDED);
  v1::Plan spec = V2();
  v1::Deployment d = Pending(spec);
  ASSERT_TRUE(rig.store.Create(d, spec, {}).ok());
  rig.store.CrashAfterWrites(1);  // Started, "a" being applied (one write: the deployment's start and a's).
  ASSERT_FALSE(rig.NewRunner()->Run(d, spec).ok());
  rig.store.Revive();
  // Then b's new version is refused by the target: a failure of the rollout itself.
  rig.target.SetGate([](const TargetObject& o) { return !(o.key.name == "b" && o.json.find("v2") != std::string::npos); });
  absl::StatusOr<v1::Deployment> done = rig.NewRunner()->Recover(*rig.store.Get("dep-p2", false), spec);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state(), v1::DEPLOYMENT_STATE_ROLLED_BACK) << done->message();
  EXPECT_EQ(done->message().find("interrupted"), std::string::npos) << done->message();
  EXPECT_TRUE(rig.store.GetPin("web", "dev")->pinned());
}

TEST(DeploymentRunnerTest, ADeploymentThatKillsItsDeployerWithoutProgressIsQuarantinedAfterTheLimit) {
  Rig rig;
  ASSERT_EQ(rig.Deploy(V1()).state(), v1::DEPLOYMENT_STATE_SUCCEEDED);
  v1::Plan spec = V2();
  v1::Deployment d = Pending(spec);
  ASSERT_TRUE(rig.store.Create(d, spec, {}).ok());
  // Applying "a" takes the process down, every time, before it is applied.
  rig.target.SetGate([&rig](const TargetObject& o) {
    if (o.key.name != "a") return true;
    rig.store.CrashAfterWrites(0);
    return false;
  });
  ASSERT_FALSE(rig.NewRunner()->Run(d, spec).ok());
  int recoveries = 0;
  absl::StatusOr<v1::Deployment> done;
  for (; recoveries < 5; ++recoveries) {
    rig.store.Revive();
    done = rig.NewRunner()->Recover(*rig.store.Get("dep-p2", false), spec);
    if (done.ok()) break;
  }
  ASSERT_TRUE(done.ok()) << done.status();
  // The first run and one recovery crashed without progress: the second recovery quarantines.
  EXPECT_EQ(recoveries, 1);
  EXPECT_EQ(done->state(), v1::DEPLOYMENT_STATE_FAILED);
  EXPECT_NE(done->message().find("quarantined after 2 attempts that made no progress"), std::string::npos)
      << done->message();
  EXPECT_NE(done->message().find("--max-recovery-attempts"), std::string::npos) << done->message();
  EXPECT_FALSE(rig.store.GetPin("web", "dev")->pinned());
  bool audited = false;
  for (const v1::Event& e : rig.store.events()) {
    if (e.idempotency_key() == "deployment/dep-p2/quarantined") {
      audited = true;
      EXPECT_EQ(e.action(), v1::AUDIT_ACTION_DEPLOYMENT_FAILED);
    }
  }
  EXPECT_TRUE(audited);
  absl::StatusOr<v1::Deployment> with_steps = rig.store.Get("dep-p2", true);
  for (const v1::DeploymentStep& s : with_steps->steps()) EXPECT_NE(s.result(), v1::STEP_RESULT_RUNNING);
}

TEST(DeploymentRunnerTest, RepeatedKillsThatEachCompleteAStepNeverQuarantine) {
  Rig rig;
  ASSERT_EQ(rig.Deploy(V1()).state(), v1::DEPLOYMENT_STATE_SUCCEEDED);
  v1::Plan spec = V2();
  v1::Deployment d = Pending(spec);
  ASSERT_TRUE(rig.store.Create(d, spec, {}).ok());
  // Each process dies soon after it completes one more step.
  rig.store.CrashAfterWrites(3);
  ASSERT_FALSE(rig.NewRunner()->Run(d, spec).ok());
  absl::StatusOr<v1::Deployment> done;
  int restarts = 0;
  for (; restarts < 50; ++restarts) {
    rig.store.Revive();
    // Recovery bookkeeping (attempts, interrupted steps, the recovery step)
    // takes up to 4 writes; 2 more complete a step (its start, then its
    // outcome with the next step's start).
    rig.store.CrashAfterWrites(6);
    done = rig.NewRunner()->Recover(*rig.store.Get("dep-p2", false), spec);
    if (done.ok()) break;
  }
  ASSERT_TRUE(done.ok()) << done.status();
  // 7 steps, two or three completed by each process.
  EXPECT_GE(restarts, 2);
  rig.store.Revive();
  ExpectFinishedOnV2(rig, "killed after every completed step");
}

TEST(DeploymentRunnerTest, AttemptsThatEndOnAnOutageWhileTheDeployerStaysUpAreNotCountedAgainstIt) {
  Rig rig;
  ASSERT_EQ(rig.Deploy(V1()).state(), v1::DEPLOYMENT_STATE_SUCCEEDED);
  v1::Plan spec = V2();
  v1::Deployment d = Pending(spec);
  ASSERT_TRUE(rig.store.Create(d, spec, {}).ok());
  std::unique_ptr<DeploymentRunner> runner = rig.NewRunner();
  // The database goes away after the deployment started, and again after
  // each recovery records its attempt: nothing completes, nobody crashed.
  rig.store.CrashAfterWrites(1);
  ASSERT_FALSE(runner->Run(d, spec).ok());
  for (int i = 0; i < 4; ++i) {
    rig.store.Revive();
    rig.store.CrashAfterWrites(1);
    absl::StatusOr<v1::Deployment> failed = runner->Recover(*rig.store.Get("dep-p2", false), spec);
    ASSERT_FALSE(failed.ok()) << failed->message();
  }
  rig.store.Revive();
  absl::StatusOr<v1::Deployment> done = runner->Recover(*rig.store.Get("dep-p2", false), spec);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state(), v1::DEPLOYMENT_STATE_SUCCEEDED) << done->message();
}

}  // namespace
}  // namespace ferry::deployer
