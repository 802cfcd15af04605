// The revision stream consumer over in-memory fakes: no PostgreSQL.
#include "services/planner/revision_consumer.h"

#include <gtest/gtest.h>

#include "tests/planner/planner_fakes.h"

namespace ferry::planner {
namespace {

using testing::AppSpec;
using testing::ConfigMap;
using testing::EnvSpec;
using testing::kRef;
using testing::PlannerOverFakes;
using testing::User;

TEST(RevisionConsumerTest, AFailedRevisionIsRetriedAndTheCursorMovesOnlyAfterIt) {
  PlannerOverFakes f;
  ASSERT_TRUE(f.planner.CreateEnvironment(EnvSpec("local", v1::APPROVAL_POLICY_AUTO), User("alice")).ok());
  ASSERT_TRUE(f.planner.CreateApplication(AppSpec("a", "apps/a", {"local"}), User("alice")).ok());
  f.repo.Commit("repo", kRef, {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}}});
  f.live.FailWith(absl::InternalError("deployer broken"));
  RevisionConsumer consumer(&f.repo, &f.store, f.planner.revision_planner());
  consumer.Start();
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_TRUE(f.Plans("a").empty());
  EXPECT_EQ(*f.store.GetCursor(RevisionConsumer::kCursorName), "") << "a failed revision does not move the cursor";
  f.live.FailWith(absl::OkStatus());
  for (int i = 0; i < 200 && f.Plans("a").empty(); ++i) absl::SleepFor(absl::Milliseconds(25));
  consumer.Stop();
  EXPECT_EQ(f.Plans("a").size(), 1u) << "retried";
  EXPECT_EQ(*f.store.GetCursor(RevisionConsumer::kCursorName), "1");
  consumer.Stop();  // idempotent
}

}  // namespace
}  // namespace ferry::planner
