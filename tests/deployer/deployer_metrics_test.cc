// DeployerMetrics: the series the alert rules (helm/ferry/files/ferry-alerts.rules.yml) read.
#include "services/deployer/deployer_metrics.h"

#include <map>
#include <string>

#include <gtest/gtest.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

namespace ferry::deployer {
namespace {

// name{labels} -> value of every counter and gauge series in `registry`.
std::map<std::string, double> Series(prometheus::Registry& registry) {
  std::map<std::string, double> out;
  for (const prometheus::MetricFamily& f : registry.Collect()) {
    for (const prometheus::ClientMetric& m : f.metric) {
      std::string key = f.name + "{";
      for (const prometheus::ClientMetric::Label& l : m.label) key += l.name + "=" + l.value + ",";
      key += "}";
      out[key] = f.type == prometheus::MetricType::Gauge ? m.gauge.value : m.counter.value;
    }
  }
  return out;
}

v1::Deployment Of(const std::string& app, const std::string& env) {
  v1::Deployment d;
  d.set_application_id(app);
  d.set_environment_id(env);
  return d;
}

TEST(DeployerMetricsTest, DeploymentsAreCountedPerApplicationAndEnvironmentWithEveryResultPresent) {
  prometheus::Registry registry;
  DeployerMetrics metrics(registry);
  metrics.DeploymentFinished(Of("web", "prod"), v1::DEPLOYMENT_STATE_FAILED, 1, absl::FromUnixSeconds(1000));
  metrics.DeploymentFinished(Of("web", "prod"), v1::DEPLOYMENT_STATE_ROLLED_BACK, 2, absl::FromUnixSeconds(2000));
  metrics.DeploymentFinished(Of("api", "dev"), v1::DEPLOYMENT_STATE_SUCCEEDED, 3, absl::FromUnixSeconds(3000));
  std::map<std::string, double> s = Series(registry);
  EXPECT_EQ(s["ferry_deployments_total{application=web,environment=prod,result=failed,}"], 1);
  EXPECT_EQ(s["ferry_deployments_total{application=web,environment=prod,result=rolled_back,}"], 1);
  // Present at 0, so that a first success of web in prod is an increase.
  ASSERT_TRUE(s.count("ferry_deployments_total{application=web,environment=prod,result=succeeded,}"));
  EXPECT_EQ(s["ferry_deployments_total{application=web,environment=prod,result=succeeded,}"], 0);
  EXPECT_EQ(s["ferry_deployments_total{application=api,environment=dev,result=succeeded,}"], 1);
  ASSERT_TRUE(s.count("ferry_deployments_total{application=api,environment=dev,result=failed,}"));
  EXPECT_EQ(s["ferry_deployments_total{application=api,environment=dev,result=failed,}"], 0);
  EXPECT_FALSE(s.count("ferry_deployments_total{application=api,environment=prod,result=failed,}"));
  // When each result last happened, for the alerts.
  EXPECT_EQ(s["ferry_deployment_last_result_timestamp_seconds{application=web,environment=prod,result=failed,}"], 1000);
  EXPECT_EQ(s["ferry_deployment_last_result_timestamp_seconds{application=web,environment=prod,result=rolled_back,}"],
            2000);
  EXPECT_FALSE(s.count("ferry_deployment_last_result_timestamp_seconds{application=web,environment=prod,result=succeeded,}"))
      << "a result that never happened has no time";
  metrics.DeploymentFinished(Of("web", "prod"), v1::DEPLOYMENT_STATE_FAILED, 1, absl::FromUnixSeconds(5000));
  s = Series(registry);
  EXPECT_EQ(s["ferry_deployment_last_result_timestamp_seconds{application=web,environment=prod,result=failed,}"], 5000);
  EXPECT_EQ(s["ferry_deployments_total{application=web,environment=prod,result=failed,}"], 2);
}

TEST(DeployerMetricsTest, DriftedObjectsIsTheLastCountPerApplicationAndEnvironment) {
  prometheus::Registry registry;
  DeployerMetrics metrics(registry);
  metrics.DriftedObjects("web", "prod", 3);
  metrics.DriftedObjects("api", "prod", 1);
  metrics.DriftedObjects("web", "prod", 0);
  std::map<std::string, double> s = Series(registry);
  EXPECT_EQ(s["ferry_drifted_objects{application=web,environment=prod,}"], 0);
  EXPECT_EQ(s["ferry_drifted_objects{application=api,environment=prod,}"], 1);
}

}  // namespace
}  // namespace ferry::deployer
