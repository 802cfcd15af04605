// Two deployer replicas over one (fake) store and target: only the replica
// holding an environment's lease deploys, recovers and checks drift there;
// a plan of another deployer group is not taken at all.

#include <gtest/gtest.h>

#include "services/deployer/deployer.h"
#include "tests/deployer/fake_lease_store.h"
#include "tests/deployer/logic_harness.h"

namespace ferry::deployer {
namespace {

using testing::LogicPlan;

TEST(ReplicaLogicTest, APlanOfAnotherDeployerGroupIsNeitherAcknowledgedNorRecorded) {
  testing::LogicHarness h;
  v1::Plan plan = LogicPlan("p1", "web", {"a"});
  plan.set_deployer_group("edge");
  absl::StatusOr<std::string> taken = h.deployer->HandlePlan(plan);
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(taken.status().message().find("belongs to deployer group \"edge\""), std::string::npos) << taken.status();
  EXPECT_EQ(h.StateOf("dep-p1"), v1::DEPLOYMENT_STATE_UNSPECIFIED);
  EXPECT_TRUE(h.target.applied("web").empty());
}

struct Replica {
  Replica(const std::string& id, testing::FakeLeaseStore* leases, testing::FakeDeploymentStore* store,
          testing::FakeTarget* target, testing::InMemoryPlanSource* plans, DeploymentNotifier* notifier,
          ferry::testing::FakeClock* clock)
      : keeper(leases, clock, KeeperOptions(id)), metrics(registry) {
    DeployerOptions o = testing::LogicHarness::Options();
    o.deployer_id = id;
    o.leases = &keeper;
    deployer = std::make_unique<Deployer>(store, target, plans, notifier, &metrics, clock, o);
  }
  ~Replica() { deployer->Stop(); }
  static LeaseOptions KeeperOptions(const std::string& id) {
    LeaseOptions o;
    o.holder = id;
    return o;
  }
  LeaseKeeper keeper;
  prometheus::Registry registry;
  DeployerMetrics metrics;
  std::unique_ptr<Deployer> deployer;
};

TEST(ReplicaLogicTest, OnlyTheLeaseHolderDeploysAndChecksDrift) {
  ferry::testing::FakeClock clock;
  testing::FakeLeaseStore leases(&clock);
  testing::FakeDeploymentStore store;
  testing::FakeTarget target;
  testing::InMemoryPlanSource plans;
  DeploymentNotifier notifier;
  Replica a("replica-a", &leases, &store, &target, &plans, &notifier, &clock);
  Replica b("replica-b", &leases, &store, &target, &plans, &notifier, &clock);
  ASSERT_TRUE(a.keeper.Claim("dev").ok());

  // b takes the plan off the stream and records it, but does not run it.
  ASSERT_TRUE(b.deployer->HandlePlan(LogicPlan("p1", "web", {"a"})).ok());
  b.deployer->WaitIdle();
  EXPECT_EQ(store.Get("dep-p1", false)->state(), v1::DEPLOYMENT_STATE_PENDING);
  EXPECT_TRUE(target.applied("web").empty());
  b.deployer->RecoverOrphans();
  b.deployer->WaitIdle();
  EXPECT_TRUE(target.applied("web").empty()) << "a replica without the lease deployed";

  // a, the holder, runs it from the record: a first run, not a failed attempt.
  a.deployer->RecoverOrphans();
  a.deployer->WaitIdle();
  absl::StatusOr<v1::Deployment> d = store.Get("dep-p1", false);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->state(), v1::DEPLOYMENT_STATE_SUCCEEDED) << d->message();
  EXPECT_EQ(d->deployer_id(), "replica-a");
  EXPECT_EQ(target.applied("web").size(), 1u);

  // Drift is looked at by the holder only.
  ObjectKey key{"ferry.dev", "ConfigFile", "", "a"};
  target.SetDrift("web", key, v1::DRIFT_STATUS_MISSING);
  b.deployer->DriftPass(true);
  b.deployer->WaitIdle();
  int drift = 0;
  for (const v1::Event& e : store.events()) drift += e.action() == v1::AUDIT_ACTION_DRIFT_DETECTED;
  EXPECT_EQ(drift, 0) << "a replica without the lease checked drift";
  a.deployer->DriftPass(true);
  a.deployer->WaitIdle();
  for (const v1::Event& e : store.events()) drift += e.action() == v1::AUDIT_ACTION_DRIFT_DETECTED;
  EXPECT_EQ(drift, 1);
}

}  // namespace
}  // namespace ferry::deployer
