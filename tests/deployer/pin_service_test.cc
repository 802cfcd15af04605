// PinService, and pins as the plan consumer honours them, against fakes.
#include "services/deployer/pin_service.h"

#include <gtest/gtest.h>

#include "tests/deployer/logic_harness.h"

namespace ferry::deployer {
namespace {

using testing::LogicHarness;
using testing::LogicPlan;

v1::Actor Alice() {
  v1::Actor a;
  a.set_kind(v1::ACTOR_KIND_USER);
  a.set_id("alice");
  return a;
}

TEST(PinServiceTest, PinWithoutAShaPinsTheLiveRevision) {
  LogicHarness h;
  v1::PinRequest req;
  req.set_application_id("web");
  req.set_environment_id("dev");
  *req.mutable_actor() = Alice();
  absl::StatusOr<v1::PinState> none = h.deployer->Pin(req);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition) << "pinned an application never deployed";
  ASSERT_TRUE(h.deployer->HandlePlan(LogicPlan("p1", "web", {"a"}, std::string(40, '1'))).ok());
  h.deployer->WaitIdle();
  req.set_reason("freeze");
  absl::StatusOr<v1::PinState> pin = h.deployer->Pin(req);
  ASSERT_TRUE(pin.ok()) << pin.status();
  EXPECT_TRUE(pin->pinned());
  EXPECT_EQ(pin->sha(), std::string(40, '1'));
  EXPECT_EQ(h.store.GetPin("web", "dev")->sha(), std::string(40, '1'));
  EXPECT_EQ(h.CountAction(v1::AUDIT_ACTION_PINNED), 1);
}

TEST(PinServiceTest, APinnedApplicationSkipsAutomaticPlansButNotApprovedOnes) {
  LogicHarness h;
  v1::PinRequest req;
  req.set_application_id("web");
  req.set_environment_id("dev");
  req.set_sha(std::string(40, '1'));
  *req.mutable_actor() = Alice();
  ASSERT_TRUE(h.deployer->Pin(req).ok());
  absl::StatusOr<std::string> skipped = h.deployer->HandlePlan(LogicPlan("p2", "web", {"a"}, std::string(40, '2')));
  ASSERT_TRUE(skipped.ok());
  EXPECT_EQ(*skipped, "");
  EXPECT_TRUE(h.plans.acks().empty()) << "a skipped plan was acknowledged";
  v1::Plan approved = LogicPlan("p3", "web", {"a"}, std::string(40, '3'));
  approved.mutable_decision()->set_automatic(false);
  approved.mutable_decision()->mutable_actor()->set_id("alice");
  absl::StatusOr<std::string> taken = h.deployer->HandlePlan(approved);
  ASSERT_TRUE(taken.ok());
  EXPECT_EQ(*taken, "dep-p3");
  h.deployer->WaitIdle();
  EXPECT_EQ(h.StateOf("dep-p3"), v1::DEPLOYMENT_STATE_SUCCEEDED);
}

TEST(PinServiceTest, UnpinAsksThePlannerToPlanAgain) {
  LogicHarness h;
  v1::PinRequest pin;
  pin.set_application_id("web");
  pin.set_environment_id("dev");
  pin.set_sha(std::string(40, '1'));
  *pin.mutable_actor() = Alice();
  ASSERT_TRUE(h.deployer->Pin(pin).ok());
  v1::UnpinRequest req;
  req.set_application_id("web");
  req.set_environment_id("dev");
  *req.mutable_actor() = Alice();
  absl::StatusOr<v1::PinState> unpinned = h.deployer->Unpin(req);
  ASSERT_TRUE(unpinned.ok()) << unpinned.status();
  EXPECT_FALSE(unpinned->pinned());
  EXPECT_FALSE(h.store.GetPin("web", "dev")->pinned());
  ASSERT_EQ(h.plans.refreshes().size(), 1u);
  EXPECT_EQ(h.plans.refreshes()[0].application_id(), "web");
  EXPECT_EQ(h.CountAction(v1::AUDIT_ACTION_UNPINNED), 1);
}

TEST(PinServiceTest, PinAndUnpinNeedAnActor) {
  LogicHarness h;
  v1::PinRequest pin;
  pin.set_application_id("web");
  pin.set_environment_id("dev");
  pin.set_sha("abc");
  EXPECT_EQ(h.deployer->Pin(pin).status().code(), absl::StatusCode::kInvalidArgument);
  v1::UnpinRequest unpin;
  unpin.set_application_id("web");
  unpin.set_environment_id("dev");
  EXPECT_EQ(h.deployer->Unpin(unpin).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ferry::deployer
