#include "services/planner/plan_version_cache.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/support/fake_clock.h"

namespace ferry::planner {
namespace {

using ferry::testing::FakeClock;

v1::Plan PlanOf(const std::string& id, size_t body_bytes = 0) {
  v1::Plan p;
  p.set_id(id);
  p.set_application_id("app");
  if (body_bytes > 0) p.add_manifests()->set_json(std::string(body_bytes, 'x'));
  return p;
}

TEST(PlanVersionCacheTest, KeepsTheLastWrittenVersionOfEachPlan) {
  FakeClock clock;
  PlanVersionCache cache(1 << 20, 64 << 10, absl::Minutes(5), &clock);
  EXPECT_FALSE(cache.Get("plan-1"));
  v1::Plan p = PlanOf("plan-1");
  p.set_state(v1::PLAN_STATE_APPROVED);
  cache.Put(p, "100");
  std::optional<PlanVersionCache::Entry> got = cache.Get("plan-1");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->version, "100");
  EXPECT_EQ(got->plan.state(), v1::PLAN_STATE_APPROVED);
  // Written again: the new body replaces the old.
  p.set_state(v1::PLAN_STATE_EXECUTING);
  cache.Put(p, "102");
  EXPECT_EQ(cache.Get("plan-1")->plan.state(), v1::PLAN_STATE_EXECUTING);
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.bytes(), p.ByteSizeLong());
  cache.Erase("plan-1");
  EXPECT_FALSE(cache.Get("plan-1"));
  EXPECT_EQ(cache.bytes(), 0u);
}

TEST(PlanVersionCacheTest, StaysWithinItsBytesOldestFirstAndKeepsNoLargePlan) {
  FakeClock clock;
  const size_t one = PlanOf("plan-0", 1000).ByteSizeLong();
  PlanVersionCache cache(3 * one, 2000, absl::Minutes(5), &clock);
  for (int i = 0; i < 5; ++i) cache.Put(PlanOf(absl::StrCat("plan-", i), 1000), "1");
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_LE(cache.bytes(), 3 * one);
  EXPECT_FALSE(cache.Get("plan-0"));
  EXPECT_FALSE(cache.Get("plan-1"));
  EXPECT_TRUE(cache.Get("plan-4"));
  // Re-put moves a plan to the newest end.
  cache.Put(PlanOf("plan-2", 1000), "2");
  cache.Put(PlanOf("plan-5", 1000), "1");
  EXPECT_TRUE(cache.Get("plan-2"));
  EXPECT_FALSE(cache.Get("plan-3"));
  // Too large to keep: not kept, and what was kept for it is dropped.
  cache.Put(PlanOf("plan-2", 5000), "3");
  EXPECT_FALSE(cache.Get("plan-2"));
  EXPECT_EQ(cache.size(), 2u);
}

TEST(PlanVersionCacheTest, ForgetsWhatItKeptLongerThanItsAge) {
  FakeClock clock;
  PlanVersionCache cache(1 << 20, 64 << 10, absl::Minutes(5), &clock);
  cache.Put(PlanOf("old"), "1");
  clock.Advance(absl::Minutes(3));
  cache.Put(PlanOf("new"), "1");
  clock.Advance(absl::Minutes(3));
  EXPECT_FALSE(cache.Get("old"));
  EXPECT_TRUE(cache.Get("new"));
  clock.Advance(absl::Minutes(3));
  EXPECT_FALSE(cache.Get("new"));
  EXPECT_EQ(cache.size(), 0u);
}

}  // namespace
}  // namespace ferry::planner
