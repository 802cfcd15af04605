// The environment lease logic against an in-memory lease store whose clock
// is a FakeClock: who holds an environment, renewal, takeover when the
// holder stops renewing, fencing tokens, and that two replicas never both
// hold one environment at any moment.

#include "services/deployer/lease_keeper.h"

#include <gtest/gtest.h>

#include "services/deployer/leased_app_locks.h"
#include "tests/deployer/fake_lease_store.h"
#include "tests/support/fake_clock.h"

namespace ferry::deployer {
namespace {

constexpr absl::Duration kTtl = absl::Seconds(15);

LeaseOptions Options(const std::string& holder, const std::string& group = "default") {
  LeaseOptions o;
  o.holder = holder;
  o.group = group;
  o.ttl = kTtl;
  return o;
}

class LeaseKeeperTest : public ::testing::Test {
 protected:
  ferry::testing::FakeClock clock_;
  testing::FakeLeaseStore store_{&clock_};
  LeaseKeeper a_{&store_, &clock_, Options("replica-a")};
  LeaseKeeper b_{&store_, &clock_, Options("replica-b")};
};

TEST_F(LeaseKeeperTest, FirstClaimTakesTheFreeLeaseWithTokenOneAndAuditsIt) {
  ASSERT_TRUE(a_.Claim("dev").ok());
  EXPECT_TRUE(a_.Holds("dev"));
  EXPECT_EQ(a_.TokenFor("dev"), 1);
  EXPECT_EQ(store_.Row("dev").holder, "replica-a");
  ASSERT_EQ(store_.events().size(), 1u);
  const v1::Event e = store_.events()[0];
  EXPECT_EQ(e.action(), v1::AUDIT_ACTION_ENVIRONMENT_LEASE_ACQUIRED);
  EXPECT_EQ(e.subject().environment_id(), "dev");
  EXPECT_EQ(e.details().fields().at("holder").string_value(), "replica-a");
  EXPECT_EQ(e.details().fields().at("previous_holder").string_value(), "");
}

TEST_F(LeaseKeeperTest, AnotherReplicaNeitherClaimsNorTakesAHeldLease) {
  ASSERT_TRUE(a_.Claim("dev").ok());
  ASSERT_TRUE(b_.Claim("dev").ok());
  ASSERT_TRUE(b_.Tick().ok());
  EXPECT_FALSE(b_.Holds("dev"));
  EXPECT_EQ(b_.TokenFor("dev"), 0);
  EXPECT_TRUE(a_.Holds("dev"));
}

TEST_F(LeaseKeeperTest, RenewedEveryThirdOfTheTtlTheLeaseIsKeptForever) {
  ASSERT_TRUE(a_.Claim("dev").ok());
  for (int i = 0; i < 30; ++i) {
    absl::StatusOr<absl::Duration> wait = a_.Tick();
    ASSERT_TRUE(wait.ok());
    EXPECT_EQ(*wait, kTtl / 3);
    clock_.Advance(*wait);
    ASSERT_TRUE(b_.Tick().ok());
    EXPECT_TRUE(a_.Holds("dev")) << "round " << i;
    EXPECT_FALSE(b_.Holds("dev")) << "round " << i;
  }
  EXPECT_EQ(a_.TokenFor("dev"), 1);
}

TEST_F(LeaseKeeperTest, AHolderThatStopsRenewingIsTakenOverAfterTheTtlWithANewTokenAndAnAuditEvent) {
  ASSERT_TRUE(a_.Claim("dev").ok());
  // a stops renewing (killed, paused). Before the ttl: nobody takes over.
  clock_.Advance(kTtl - absl::Milliseconds(1));
  ASSERT_TRUE(b_.Tick().ok());
  EXPECT_FALSE(b_.Holds("dev"));
  clock_.Advance(absl::Milliseconds(2));
  ASSERT_TRUE(b_.Tick().ok());
  EXPECT_TRUE(b_.Holds("dev"));
  EXPECT_EQ(b_.TokenFor("dev"), 2);
  ASSERT_EQ(store_.events().size(), 2u);
  const v1::Event e = store_.events()[1];
  EXPECT_EQ(e.details().fields().at("previous_holder").string_value(), "replica-a");
  EXPECT_EQ(e.details().fields().at("token").string_value(), "2");
  EXPECT_NE(e.message().find("took over"), std::string::npos) << e.message();
}

TEST_F(LeaseKeeperTest, APausedHolderStopsActingBeforeAnyoneCanTakeOver) {
  ASSERT_TRUE(a_.Claim("dev").ok());
  // Step the clock through the ttl and past it: at no instant do both hold.
  for (int ms = 0; ms <= 20000; ms += 250) {
    ASSERT_TRUE(b_.Tick().ok());
    EXPECT_FALSE(a_.Holds("dev") && b_.Holds("dev")) << "both hold at +" << ms << "ms";
    clock_.Advance(absl::Milliseconds(250));
  }
  EXPECT_TRUE(b_.Holds("dev"));
  // The paused one wakes up: its renewal is refused and it drops the lease
  // for good (its token is stale), without taking it back.
  ASSERT_TRUE(a_.Tick().ok());
  EXPECT_FALSE(a_.Holds("dev"));
  EXPECT_EQ(a_.HeldLeases().size(), 0u);
  EXPECT_EQ(store_.Row("dev").holder, "replica-b");
}

TEST_F(LeaseKeeperTest, ReleasedLeasesAreTakenAtOnce) {
  ASSERT_TRUE(a_.Claim("dev").ok());
  a_.ReleaseAll();
  EXPECT_FALSE(a_.Holds("dev"));
  ASSERT_TRUE(b_.Tick().ok());
  EXPECT_TRUE(b_.Holds("dev"));
  EXPECT_EQ(b_.TokenFor("dev"), 2);
}

TEST_F(LeaseKeeperTest, AReplicaRestartedWithTheSameIdRetakesItsLeasesAtOnce) {
  ASSERT_TRUE(a_.Claim("dev").ok());
  LeaseKeeper restarted(&store_, &clock_, Options("replica-a"));
  ASSERT_TRUE(restarted.Tick().ok());
  EXPECT_TRUE(restarted.Holds("dev"));
  EXPECT_EQ(restarted.TokenFor("dev"), 2);  // The old process's token is fenced off.
  ASSERT_TRUE(a_.Tick().ok());
  EXPECT_FALSE(a_.Holds("dev"));
}

TEST_F(LeaseKeeperTest, OnlyTheOwningGroupTakesAnEnvironmentAndAMoveFreesItAtOnce) {
  LeaseKeeper other(&store_, &clock_, Options("replica-c", "edge"));
  ASSERT_TRUE(a_.Claim("dev").ok());
  clock_.Advance(kTtl * 2);  // Expired, but of group default: edge never takes it.
  ASSERT_TRUE(other.Tick().ok());
  EXPECT_FALSE(other.Holds("dev"));
  // ferry.yaml moves dev to group edge (a plan of the new group claims it).
  ASSERT_TRUE(a_.Tick().ok());
  ASSERT_TRUE(a_.Holds("dev"));
  ASSERT_TRUE(other.Claim("dev").ok());
  EXPECT_TRUE(other.Holds("dev"));
  ASSERT_TRUE(a_.Tick().ok());
  EXPECT_FALSE(a_.Holds("dev"));
}

TEST_F(LeaseKeeperTest, ADatabaseOutageKeepsTheLeaseOnlyUntilItsOwnTime) {
  ASSERT_TRUE(a_.Claim("dev").ok());
  store_.set_fail(true);
  clock_.Advance(kTtl / 3);
  ASSERT_TRUE(a_.Tick().ok());
  EXPECT_TRUE(a_.Holds("dev"));
  clock_.Advance(kTtl / 3);
  ASSERT_TRUE(a_.Tick().ok());
  EXPECT_TRUE(a_.Holds("dev"));
  clock_.Advance(kTtl / 3);  // Past ttl minus a tenth: no longer trusted.
  EXPECT_FALSE(a_.Holds("dev"));
  ASSERT_TRUE(a_.Tick().ok());
  EXPECT_EQ(a_.HeldLeases().size(), 0u);
}

TEST_F(LeaseKeeperTest, LeasedLocksAreGrantedOnlyWhereTheLeaseIsHeldAndOncePerApplication) {
  LeasedAppLocks a_locks(&a_);
  LeasedAppLocks b_locks(&b_);
  ASSERT_TRUE(a_.Claim("dev").ok());
  absl::StatusOr<std::unique_ptr<AppLock>> held = a_locks.TryLock("web", "dev");
  ASSERT_TRUE(held.ok());
  EXPECT_NE(*held, nullptr);
  EXPECT_EQ(*a_locks.TryLock("web", "dev"), nullptr);  // Once per (application, environment).
  EXPECT_NE(*a_locks.TryLock("api", "dev"), nullptr);
  EXPECT_EQ(*b_locks.TryLock("other", "dev"), nullptr);  // Not b's environment.
  EXPECT_TRUE(a_locks.Owns("dev"));
  EXPECT_FALSE(b_locks.Owns("dev"));
  held->reset();
  EXPECT_NE(*a_locks.TryLock("web", "dev"), nullptr);
}

TEST(DeployerGroupTest, NamesAreChecked) {
  EXPECT_TRUE(ValidateDeployerGroup("default").ok());
  EXPECT_TRUE(ValidateDeployerGroup("edge-1").ok());
  EXPECT_EQ(ValidateDeployerGroup("").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateDeployerGroup("Edge").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateDeployerGroup("-x").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateDeployerGroup(std::string(64, 'a')).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ferry::deployer
