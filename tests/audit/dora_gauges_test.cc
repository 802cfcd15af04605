// The ferry_dora_* gauges: set per application and environment from the
// figures of the window, and removed for a pair that has left it.

#include "services/audit/dora_gauges.h"

#include <gtest/gtest.h>

#include <google/protobuf/util/time_util.h>

#include <prometheus/registry.h>

#include "tests/support/fake_clock.h"

namespace ferry::audit {
namespace {

using google::protobuf::util::TimeUtil;

// A HistoryStore whose DoraOutcomes are scripted (and the range it was asked).
class ScriptedHistory : public HistoryStore {
 public:
  absl::StatusOr<std::vector<DeploymentOutcome>> StateAt(absl::Time, const std::string&, const std::string&) override {
    return std::vector<DeploymentOutcome>{};
  }
  absl::StatusOr<Moved> MovedBetween(absl::Time, absl::Time, const std::string&, const std::string&) override {
    return Moved{};
  }
  absl::StatusOr<std::vector<DeploymentOutcome>> Outcomes(absl::Time, absl::Time, const std::string&,
                                                          const std::string&, const ChangeCursor&, int) override {
    return std::vector<DeploymentOutcome>{};
  }
  absl::StatusOr<std::vector<DeploymentOutcome>> DoraOutcomes(absl::Time start, absl::Time end, const std::string&,
                                                              const std::string&) override {
    asked_start = start;
    asked_end = end;
    return outcomes;
  }

  std::vector<DeploymentOutcome> outcomes;
  absl::Time asked_start, asked_end;
};

DeploymentOutcome Outcome(v1::AuditAction action, const std::string& id, const std::string& env, absl::Time t) {
  DeploymentOutcome o;
  o.action = action;
  o.deployment.set_deployment_id(id);
  o.deployment.set_application_id("web");
  o.deployment.set_environment_id(env);
  o.deployment.set_kind("DEPLOYMENT_KIND_ROLLOUT");
  *o.deployment.mutable_time() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
  return o;
}

// The value of `family`{environment=env}, or -1 when there is no such series.
double Value(prometheus::Registry& registry, const std::string& family, const std::string& env) {
  for (const prometheus::MetricFamily& f : registry.Collect()) {
    if (f.name != family) continue;
    for (const prometheus::ClientMetric& m : f.metric) {
      for (const prometheus::ClientMetric::Label& l : m.label) {
        if (l.name == "environment" && l.value == env) return m.gauge.value;
      }
    }
  }
  return -1;
}

TEST(DoraGaugesTest, SetsEachPairsFiguresAndDropsPairsThatLeftTheWindow) {
  testing::FakeClock clock;
  const absl::Time now = absl::FromUnixSeconds(1767225600);
  clock.Set(now);
  ScriptedHistory store;
  TimeTravel history(store, clock);
  prometheus::Registry registry;
  DoraGauges gauges(history, clock, registry, absl::Hours(48));

  // prod: a success 2h after its commit, then a failure restored 30 min later
  // by another success; staging: one success.
  DeploymentOutcome ok = Outcome(v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED, "d1", "prod", now - absl::Hours(10));
  ok.commit_time = now - absl::Hours(12);
  DeploymentOutcome failed = Outcome(v1::AUDIT_ACTION_DEPLOYMENT_FAILED, "d2", "prod", now - absl::Hours(5));
  failed.next_success_time = now - absl::Hours(5) + absl::Minutes(30);
  store.outcomes = {ok, Outcome(v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED, "s1", "staging", now - absl::Hours(3)), failed};
  ASSERT_TRUE(gauges.Refresh().ok());
  EXPECT_EQ(store.asked_start, now - absl::Hours(48));
  EXPECT_EQ(store.asked_end, now);
  EXPECT_DOUBLE_EQ(Value(registry, "ferry_dora_deployments", "prod"), 2);
  EXPECT_DOUBLE_EQ(Value(registry, "ferry_dora_deployments_per_day", "prod"), 0.5);  // 1 success in 2 days
  EXPECT_DOUBLE_EQ(Value(registry, "ferry_dora_change_failure_rate", "prod"), 0.5);
  EXPECT_DOUBLE_EQ(Value(registry, "ferry_dora_lead_time_seconds", "prod"), 7200);
  EXPECT_DOUBLE_EQ(Value(registry, "ferry_dora_time_to_restore_seconds", "prod"), 1800);
  EXPECT_DOUBLE_EQ(Value(registry, "ferry_dora_unrestored_failures", "prod"), 0);
  EXPECT_DOUBLE_EQ(Value(registry, "ferry_dora_deployments", "staging"), 1);

  // staging's deployment has left the window: its series go.
  store.outcomes = {ok, failed};
  ASSERT_TRUE(gauges.Refresh().ok());
  EXPECT_DOUBLE_EQ(Value(registry, "ferry_dora_deployments", "staging"), -1);
  EXPECT_DOUBLE_EQ(Value(registry, "ferry_dora_deployments", "prod"), 2);
}

}  // namespace
}  // namespace ferry::audit
