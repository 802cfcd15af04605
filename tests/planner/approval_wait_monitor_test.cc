// ApprovalWaitMonitor over the in-memory store, on a fake clock.
#include "services/planner/approval_wait_monitor.h"

#include <map>
#include <string>

#include <gtest/gtest.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include "tests/planner/planner_fakes.h"
#include "tests/support/fake_clock.h"

namespace ferry::planner {
namespace {

using testing::FakePlannerStore;

// name{application,environment} -> value of the gauge series in `registry`.
std::map<std::string, double> Gauges(prometheus::Registry& registry, const std::string& name) {
  std::map<std::string, double> out;
  for (const prometheus::MetricFamily& f : registry.Collect()) {
    if (f.name != name) continue;
    for (const prometheus::ClientMetric& m : f.metric) {
      std::map<std::string, std::string> l;
      for (const prometheus::ClientMetric::Label& label : m.label) l[label.name] = label.value;
      out[l["application"] + "/" + l["environment"]] = m.gauge.value;
    }
  }
  return out;
}

v1::Plan Plan(const std::string& app, const std::string& env, v1::PlanState state, absl::Time created) {
  v1::Plan p;
  p.set_application_id(app);
  p.set_environment_id(env);
  p.set_state(state);
  p.mutable_create_time()->set_seconds(absl::ToUnixSeconds(created));
  return p;
}

TEST(ApprovalWaitMonitorTest, CountsPendingPlansAndTheAgeOfTheOldestPerApplicationAndEnvironment) {
  FakePlannerStore store;
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  ferry::testing::FakeClock clock(t0);
  prometheus::Registry registry;
  PlannerMetrics metrics(&registry);
  ApprovalWaitMonitor monitor(&store, &metrics, &clock, absl::Seconds(15));
  ASSERT_TRUE(store.InsertPlan(Plan("web", "prod", v1::PLAN_STATE_PENDING, t0 - absl::Hours(3)), "a", false, false,
                               nullptr, nullptr).ok());
  ASSERT_TRUE(store.InsertPlan(Plan("web", "prod", v1::PLAN_STATE_PENDING, t0 - absl::Minutes(5)), "b", false,
                               false, nullptr, nullptr).ok());
  ASSERT_TRUE(store.InsertPlan(Plan("api", "prod", v1::PLAN_STATE_PENDING, t0 - absl::Minutes(1)), "c", false,
                               false, nullptr, nullptr).ok());
  // Not waiting for approval: approved, finished, or a preview.
  ASSERT_TRUE(store.InsertPlan(Plan("db", "prod", v1::PLAN_STATE_APPROVED, t0 - absl::Hours(9)), "d", false, false,
                               nullptr, nullptr).ok());
  ASSERT_TRUE(store.InsertPlan(Plan("db", "dev", v1::PLAN_STATE_SUCCEEDED, t0 - absl::Hours(9)), "e", false, false,
                               nullptr, nullptr).ok());
  v1::Plan preview = Plan("db", "stage", v1::PLAN_STATE_PENDING, t0 - absl::Hours(9));
  preview.set_preview(true);
  ASSERT_TRUE(store.InsertPlan(preview, "f", false, false, nullptr, nullptr).ok());

  ASSERT_TRUE(monitor.MeasureOnce().ok());
  EXPECT_EQ(Gauges(registry, "ferry_plans_awaiting_approval"),
            (std::map<std::string, double>{{"api/prod", 1}, {"web/prod", 2}}));
  EXPECT_EQ(Gauges(registry, "ferry_plan_approval_wait_seconds"),
            (std::map<std::string, double>{{"api/prod", 60}, {"web/prod", 3 * 3600}}));

  clock.Advance(absl::Minutes(10));
  ASSERT_TRUE(monitor.MeasureOnce().ok());
  EXPECT_EQ(Gauges(registry, "ferry_plan_approval_wait_seconds")["web/prod"], 3 * 3600 + 600) << "the wait grows";
}

TEST(ApprovalWaitMonitorTest, APairWithNothingLeftWaitingLosesItsSeriesAndTheLoopMeasuresAtStart) {
  FakePlannerStore store;
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  ferry::testing::FakeClock clock(t0);
  prometheus::Registry registry;
  PlannerMetrics metrics(&registry);
  absl::StatusOr<v1::Plan> pending =
      store.InsertPlan(Plan("web", "prod", v1::PLAN_STATE_PENDING, t0 - absl::Hours(2)), "a", false, false, nullptr,
                       nullptr);
  ASSERT_TRUE(pending.ok());
  // More than a page of waiting plans in another pair: all counted.
  for (int i = 0; i < 450; ++i) {
    ASSERT_TRUE(store.InsertPlan(Plan("api", "prod", v1::PLAN_STATE_PENDING, t0 - absl::Seconds(i)),
                                 "k" + std::to_string(i), false, false, nullptr, nullptr).ok());
  }
  ApprovalWaitMonitor monitor(&store, &metrics, &clock, absl::Seconds(15));
  monitor.Start();
  clock.AwaitSleeps(1);  // the first pass ran at Start
  EXPECT_EQ(clock.SleepingUntil(), t0 + absl::Seconds(15));
  EXPECT_EQ(Gauges(registry, "ferry_plans_awaiting_approval"),
            (std::map<std::string, double>{{"api/prod", 450}, {"web/prod", 1}}));
  EXPECT_EQ(Gauges(registry, "ferry_plan_approval_wait_seconds")["api/prod"], 449);

  ASSERT_TRUE(store.MutatePlan(pending->id(), [](v1::Plan& p) -> absl::StatusOr<std::vector<v1::Event>> {
    p.set_state(v1::PLAN_STATE_APPROVED);
    return std::vector<v1::Event>{};
  }).ok());
  clock.Advance(absl::Seconds(15));
  clock.AwaitSleeps(2);
  EXPECT_EQ(Gauges(registry, "ferry_plans_awaiting_approval"), (std::map<std::string, double>{{"api/prod", 450}}));
  EXPECT_EQ(Gauges(registry, "ferry_plan_approval_wait_seconds").count("web/prod"), 0u)
      << "an approved plan still counts as waiting";
  monitor.Stop();
  monitor.Stop();  // idempotent
}

}  // namespace
}  // namespace ferry::planner
