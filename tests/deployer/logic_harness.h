#pragma once

// A Deployer wired to in-memory fakes (store, target, planner), for logic
// tests that need neither PostgreSQL nor gRPC nor real processes.

#include <prometheus/registry.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "services/deployer/deployer.h"
#include "tests/deployer/fake_deployment_store.h"
#include "tests/deployer/fake_plan_source.h"
#include "tests/deployer/fake_target.h"
#include "tests/support/fake_clock.h"

namespace ferry::deployer::testing {

// A released plan deploying ConfigFile objects named `names` to (app, "dev")
// at revision `sha`, approved automatically.
inline v1::Plan LogicPlan(const std::string& id, const std::string& app, const std::vector<std::string>& names,
                          const std::string& sha = std::string(40, 'a')) {
  v1::Plan p;
  p.set_id(id);
  p.set_application_id(app);
  p.set_environment_id("dev");
  p.set_state(v1::PLAN_STATE_APPROVED);
  p.set_trigger(v1::PLAN_TRIGGER_NEW_REVISION);
  p.mutable_target_revision()->set_repository_id("repo");
  p.mutable_target_revision()->set_sha(sha);
  p.set_manifests_digest("sha256:" + sha);
  for (const std::string& name : names) {
    v1::Manifest* m = p.add_manifests();
    m->mutable_object()->set_group("ferry.dev");
    m->mutable_object()->set_kind("ConfigFile");
    m->mutable_object()->set_name(name);
    m->set_json("{\"kind\":\"ConfigFile\",\"metadata\":{\"name\":\"" + name + "\"},\"sha\":\"" + sha + "\"}");
    m->set_source_path("apps/" + app + "/" + name + ".yaml");
  }
  p.mutable_target()->set_kind(v1::TARGET_KIND_HOST);
  p.mutable_sync_policy()->set_automated(true);
  p.mutable_health_timeout()->set_seconds(10);
  p.mutable_decision()->set_automatic(true);
  p.mutable_decision()->mutable_actor()->set_id("ferry");
  return p;
}

// Waits up to `timeout` for `done()`.
template <typename F>
bool Eventually(F done, absl::Duration timeout = absl::Seconds(5)) {
  absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

struct LogicHarness {
  explicit LogicHarness(DeployerOptions options = Options()) : metrics(registry) {
    deployer = std::make_unique<Deployer>(&store, &target, &plans, &notifier, &metrics, &clock, options);
  }
  ~LogicHarness() {
    deployer->Stop();
    notifier.Shutdown();
  }

  // A new deployer process on the same store, target and planner: the old
  // one stops (its running deployments are left unfinished) and is gone.
  void Restart(DeployerOptions options = Options()) {
    deployer->Stop();
    deployer->WaitIdle();
    deployer = std::make_unique<Deployer>(&store, &target, &plans, &notifier, &metrics, &clock, options);
  }

  static DeployerOptions Options() {
    DeployerOptions o;
    o.deployer_id = "test";
    o.runner.health_poll = absl::Milliseconds(5);
    o.plan_retry = absl::Milliseconds(10);
    return o;
  }

  // The deployment's state, or UNSPECIFIED when it is not recorded.
  v1::DeploymentState StateOf(const std::string& id) {
    absl::StatusOr<v1::Deployment> d = store.Get(id, false);
    return d.ok() ? d->state() : v1::DEPLOYMENT_STATE_UNSPECIFIED;
  }

  int CountAction(v1::AuditAction action) {
    int n = 0;
    for (const v1::Event& e : store.events()) n += e.action() == action;
    return n;
  }

  FakeDeploymentStore store;
  FakeTarget target;
  InMemoryPlanSource plans;
  DeploymentNotifier notifier;
  prometheus::Registry registry;
  DeployerMetrics metrics;
  // The deployer's time: due times, backoffs and the loops' waits move only
  // when the test advances it.
  ferry::testing::FakeClock clock;
  std::unique_ptr<Deployer> deployer;
};

}  // namespace ferry::deployer::testing
