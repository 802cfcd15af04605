#include "services/deployer/kubernetes/kube_health.h"

#include <gtest/gtest.h>

#include "common/json/json.h"

namespace ferry::deployer::kubernetes {
namespace {

using nlohmann::json;

v1::HealthStatus H(const std::string& text) {
  absl::StatusOr<json> j = ParseJson(text);
  EXPECT_TRUE(j.ok()) << text;
  return HealthOf(*j).first;
}

constexpr auto kHealthy = v1::HEALTH_STATUS_HEALTHY;
constexpr auto kProgressing = v1::HEALTH_STATUS_PROGRESSING;
constexpr auto kDegraded = v1::HEALTH_STATUS_DEGRADED;

TEST(KubeHealthTest, DeploymentRolledOutIsHealthy) {
  EXPECT_EQ(H(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"generation":2},"spec":{"replicas":3},
    "status":{"observedGeneration":2,"replicas":3,"updatedReplicas":3,"availableReplicas":3}})"), kHealthy);
}

TEST(KubeHealthTest, DeploymentNotYetObservedIsProgressing) {
  EXPECT_EQ(H(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"generation":3},"spec":{"replicas":3},
    "status":{"observedGeneration":2,"replicas":3,"updatedReplicas":3,"availableReplicas":3}})"), kProgressing);
}

TEST(KubeHealthTest, DeploymentWithoutStatusIsProgressing) {
  EXPECT_EQ(H(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"generation":1},"spec":{"replicas":1}})"),
            kProgressing);
}

TEST(KubeHealthTest, DeploymentUpdatingOrUnavailableIsProgressing) {
  EXPECT_EQ(H(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"generation":1},"spec":{"replicas":3},
    "status":{"observedGeneration":1,"replicas":3,"updatedReplicas":2,"availableReplicas":3}})"), kProgressing);
  EXPECT_EQ(H(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"generation":1},"spec":{"replicas":3},
    "status":{"observedGeneration":1,"replicas":4,"updatedReplicas":3,"availableReplicas":3}})"), kProgressing);
  EXPECT_EQ(H(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"generation":1},"spec":{"replicas":3},
    "status":{"observedGeneration":1,"replicas":3,"updatedReplicas":3,"availableReplicas":1}})"), kProgressing);
}

TEST(KubeHealthTest, DeploymentPastProgressDeadlineIsDegraded) {
  auto [h, msg] = HealthOf(*ParseJson(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"generation":1},
    "spec":{"replicas":3},"status":{"observedGeneration":1,"replicas":3,"updatedReplicas":1,"availableReplicas":1,
    "conditions":[{"type":"Progressing","status":"False","reason":"ProgressDeadlineExceeded",
                   "message":"ReplicaSet \"web-1\" has timed out progressing."}]}})"));
  EXPECT_EQ(h, kDegraded);
  EXPECT_NE(msg.find("timed out progressing"), std::string::npos) << msg;
}

bool Final(const std::string& text) {
  absl::StatusOr<json> j = ParseJson(text);
  EXPECT_TRUE(j.ok()) << text;
  return FailedForGood(*j);
}

TEST(KubeHealthTest, OnlyDegradedStatesNoWaitingMendsFailForGood) {
  // The Deployment controller gave up: final.
  EXPECT_TRUE(Final(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"generation":1},
    "spec":{"replicas":3},"status":{"observedGeneration":1,"replicas":3,"updatedReplicas":1,"availableReplicas":1,
    "conditions":[{"type":"Progressing","status":"False","reason":"ProgressDeadlineExceeded"}]}})"));
  // Still rolling out, or healthy: not.
  EXPECT_FALSE(Final(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"generation":1},"spec":{"replicas":3},
    "status":{"observedGeneration":1,"replicas":3,"updatedReplicas":2,"availableReplicas":3}})"));
  EXPECT_FALSE(Final(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"generation":1},"spec":{"replicas":1},
    "status":{"observedGeneration":1,"replicas":1,"updatedReplicas":1,"availableReplicas":1}})"));
  // A failed Job and a failed Pod: final.
  EXPECT_TRUE(Final(R"({"apiVersion":"batch/v1","kind":"Job","status":{"conditions":[{"type":"Failed",
    "status":"True","reason":"BackoffLimitExceeded"}]}})"));
  EXPECT_TRUE(Final(R"({"apiVersion":"v1","kind":"Pod","status":{"phase":"Failed","message":"evicted"}})"));
  // A container in CrashLoopBackOff is DEGRADED but may recover: waited out.
  EXPECT_FALSE(Final(R"({"apiVersion":"v1","kind":"Pod","spec":{"restartPolicy":"Always"},"status":{"phase":"Running",
    "containerStatuses":[{"name":"c","ready":false,"state":{"waiting":{"reason":"CrashLoopBackOff"}}}]}})"));
  // Some custom object whose Ready is False: waited out.
  EXPECT_FALSE(Final(R"({"apiVersion":"example.com/v1","kind":"Widget","status":{"conditions":[{"type":"Ready",
    "status":"False","reason":"Broken"}]}})"));
}

TEST(KubeHealthTest, StatefulSet) {
  EXPECT_EQ(H(R"({"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"generation":1},"spec":{"replicas":2},
    "status":{"observedGeneration":1,"readyReplicas":2,"currentRevision":"a","updateRevision":"a"}})"), kHealthy);
  EXPECT_EQ(H(R"({"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"generation":1},"spec":{"replicas":2},
    "status":{"observedGeneration":1,"readyReplicas":1,"currentRevision":"a","updateRevision":"a"}})"), kProgressing);
  EXPECT_EQ(H(R"({"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"generation":2},"spec":{"replicas":2},
    "status":{"observedGeneration":2,"readyReplicas":2,"updatedReplicas":1,"currentRevision":"a","updateRevision":"b"}})"),
            kProgressing);
}

TEST(KubeHealthTest, DaemonSet) {
  EXPECT_EQ(H(R"({"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"generation":1},
    "status":{"observedGeneration":1,"desiredNumberScheduled":3,"updatedNumberScheduled":3,"numberAvailable":3}})"),
            kHealthy);
  EXPECT_EQ(H(R"({"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"generation":1},
    "status":{"observedGeneration":1,"desiredNumberScheduled":3,"updatedNumberScheduled":3,"numberAvailable":2}})"),
            kProgressing);
}

TEST(KubeHealthTest, ReplicaSet) {
  EXPECT_EQ(H(R"({"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"generation":1},"spec":{"replicas":2},
    "status":{"observedGeneration":1,"availableReplicas":2}})"), kHealthy);
  EXPECT_EQ(H(R"({"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"generation":1},"spec":{"replicas":2},
    "status":{"observedGeneration":1,"availableReplicas":0,"conditions":[{"type":"ReplicaFailure","status":"True",
    "reason":"FailedCreate","message":"quota exceeded"}]}})"), kDegraded);
}

TEST(KubeHealthTest, Pod) {
  EXPECT_EQ(H(R"({"apiVersion":"v1","kind":"Pod","spec":{"restartPolicy":"Always"},"status":{"phase":"Running",
    "containerStatuses":[{"name":"a","ready":true,"state":{"running":{}}}]}})"), kHealthy);
  EXPECT_EQ(H(R"({"apiVersion":"v1","kind":"Pod","status":{"phase":"Pending"}})"), kProgressing);
  EXPECT_EQ(H(R"({"apiVersion":"v1","kind":"Pod","status":{"phase":"Succeeded"}})"), kHealthy);
  EXPECT_EQ(H(R"({"apiVersion":"v1","kind":"Pod","status":{"phase":"Failed","message":"OOMKilled"}})"), kDegraded);
  EXPECT_EQ(H(R"({"apiVersion":"v1","kind":"Pod","status":{"phase":"Running","containerStatuses":[{"name":"a",
    "ready":false,"state":{"waiting":{"reason":"CrashLoopBackOff","message":"back-off 5m"}}}]}})"), kDegraded);
  EXPECT_EQ(H(R"({"apiVersion":"v1","kind":"Pod","status":{"phase":"Pending","containerStatuses":[{"name":"a",
    "ready":false,"state":{"waiting":{"reason":"ImagePullBackOff"}}}]}})"), kDegraded);
}

TEST(KubeHealthTest, Job) {
  EXPECT_EQ(H(R"({"apiVersion":"batch/v1","kind":"Job","status":{"conditions":[{"type":"Complete","status":"True"}]}})"),
            kHealthy);
  EXPECT_EQ(H(R"({"apiVersion":"batch/v1","kind":"Job","status":{"conditions":[{"type":"Failed","status":"True",
    "reason":"BackoffLimitExceeded"}]}})"), kDegraded);
  EXPECT_EQ(H(R"({"apiVersion":"batch/v1","kind":"Job","status":{"active":1}})"), kProgressing);
}

TEST(KubeHealthTest, ServiceLoadBalancerNeedsIngress) {
  EXPECT_EQ(H(R"({"apiVersion":"v1","kind":"Service","spec":{"type":"ClusterIP"}})"), kHealthy);
  EXPECT_EQ(H(R"({"apiVersion":"v1","kind":"Service","spec":{"type":"LoadBalancer"},"status":{"loadBalancer":{}}})"),
            kProgressing);
  EXPECT_EQ(H(R"({"apiVersion":"v1","kind":"Service","spec":{"type":"LoadBalancer"},
    "status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.7"}]}}})"), kHealthy);
}

TEST(KubeHealthTest, PersistentVolumeClaim) {
  EXPECT_EQ(H(R"({"apiVersion":"v1","kind":"PersistentVolumeClaim","status":{"phase":"Bound"}})"), kHealthy);
  EXPECT_EQ(H(R"({"apiVersion":"v1","kind":"PersistentVolumeClaim","status":{"phase":"Pending"}})"), kProgressing);
  EXPECT_EQ(H(R"({"apiVersion":"v1","kind":"PersistentVolumeClaim","status":{"phase":"Lost"}})"), kDegraded);
}

TEST(KubeHealthTest, CustomResourceDefinition) {
  EXPECT_EQ(H(R"({"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition",
    "status":{"conditions":[{"type":"NamesAccepted","status":"True"},{"type":"Established","status":"True"}]}})"),
            kHealthy);
  EXPECT_EQ(H(R"({"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","status":{}})"),
            kProgressing);
  EXPECT_EQ(H(R"({"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition",
    "status":{"conditions":[{"type":"NamesAccepted","status":"False","reason":"ListKindConflict"}]}})"), kDegraded);
}

TEST(KubeHealthTest, ApiService) {
  EXPECT_EQ(H(R"({"apiVersion":"apiregistration.k8s.io/v1","kind":"APIService",
    "status":{"conditions":[{"type":"Available","status":"True"}]}})"), kHealthy);
  EXPECT_EQ(H(R"({"apiVersion":"apiregistration.k8s.io/v1","kind":"APIService",
    "status":{"conditions":[{"type":"Available","status":"False","reason":"MissingEndpoints"}]}})"), kProgressing);
}

TEST(KubeHealthTest, AnyObjectWithReadyOrAvailableCondition) {
  EXPECT_EQ(H(R"({"apiVersion":"example.com/v1","kind":"Database","status":{"conditions":[{"type":"Ready","status":"True"}]}})"),
            kHealthy);
  EXPECT_EQ(H(R"({"apiVersion":"example.com/v1","kind":"Database","status":{"conditions":[{"type":"Ready",
    "status":"False","reason":"ProvisioningFailed"}]}})"), kDegraded);
  EXPECT_EQ(H(R"({"apiVersion":"example.com/v1","kind":"Database","status":{"conditions":[{"type":"Ready",
    "status":"False","reason":"Progressing"}]}})"), kProgressing);
  EXPECT_EQ(H(R"({"apiVersion":"example.com/v1","kind":"Database","status":{"conditions":[{"type":"Available",
    "status":"Unknown"}]}})"), kProgressing);
}

TEST(KubeHealthTest, UnknownKindsAreHealthyWhenTheyExist) {
  EXPECT_EQ(H(R"({"apiVersion":"v1","kind":"ConfigMap","data":{"a":"b"}})"), kHealthy);
  EXPECT_EQ(H(R"({"apiVersion":"example.com/v1","kind":"Widget","status":"odd"})"), kHealthy);
}

TEST(KubeHealthTest, BeingDeletedIsProgressing) {
  EXPECT_EQ(H(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"deletionTimestamp":"2026-01-01T00:00:00Z"}})"),
            kProgressing);
}

TEST(KubeHealthTest, StatusOfUnexpectedShapeIsReadAsAbsent) {
  EXPECT_EQ(H(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":"x","spec":[],"status":{"conditions":"x",
    "replicas":"3"}})"), kProgressing);
  EXPECT_EQ(H(R"({"apiVersion":"v1","kind":"Pod","status":{"containerStatuses":[1,"x",null]}})"), kProgressing);
  EXPECT_EQ(HealthOf(json::array()).first, v1::HEALTH_STATUS_UNKNOWN);
}

}  // namespace
}  // namespace ferry::deployer::kubernetes
