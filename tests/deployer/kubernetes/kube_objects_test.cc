#include "services/deployer/kubernetes/kube_objects.h"

#include <gtest/gtest.h>

#include "common/json/json.h"

namespace ferry::deployer::kubernetes {
namespace {

using nlohmann::json;

TEST(KubeObjectsTest, InstallOrderPutsNamespacesThenCrdsBeforeWorkloadsAndCustomKindsLast) {
  EXPECT_LT(InstallRank("", "Namespace"), InstallRank("", "ConfigMap"));
  EXPECT_LT(InstallRank("", "ConfigMap"), InstallRank("apiextensions.k8s.io", "CustomResourceDefinition"));
  EXPECT_LT(InstallRank("apiextensions.k8s.io", "CustomResourceDefinition"), InstallRank("apps", "Deployment"));
  EXPECT_LT(InstallRank("", "Service"), InstallRank("apps", "Deployment"));
  EXPECT_LT(InstallRank("apps", "Deployment"), InstallRank("example.com", "Widget"));
  // A custom group's kind named like a core one is still a custom kind.
  EXPECT_EQ(InstallRank("example.com", "Namespace"), InstallRank("example.com", "Widget"));
}

TEST(KubeObjectsTest, ConflictMessageNamesFieldsAndManagers) {
  std::string body = R"({"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Conflict","code":409,
    "message":"Apply failed with 1 conflict: conflict with \"kubectl-edit\" using v1: .data.color",
    "details":{"causes":[{"reason":"FieldManagerConflict","message":"conflict with \"kubectl-edit\" using v1",
                          "field":".data.color"}]}})";
  EXPECT_EQ(ConflictMessage(body), "conflict: .data.color (conflict with \"kubectl-edit\" using v1)");
  EXPECT_EQ(ConflictMessage(R"({"kind":"Status","message":"Operation cannot be fulfilled"})"),
            "Operation cannot be fulfilled");
  EXPECT_EQ(ConflictMessage("not json"), "conflict (no Status from the server)");
}

TEST(KubeObjectsTest, DifferentFieldsIgnoresServerFields) {
  json live = *ParseJson(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"7",
    "uid":"u","generation":3,"managedFields":[{"manager":"x"}]},"data":{"k":"v","extra":"1"},"status":{"a":1}})");
  json want = *ParseJson(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"8"},
    "data":{"k":"w","extra":"1"}})");
  std::vector<std::string> fields = DifferentFields(WithoutServerFields(live), WithoutServerFields(want));
  ASSERT_EQ(fields.size(), 1u);
  EXPECT_EQ(fields[0], "/data/k");
  EXPECT_TRUE(DifferentFields(WithoutServerFields(live), WithoutServerFields(live)).empty());
}

TEST(KubeObjectsTest, OnlyAppliedByNeedsTheDigestAndNoOtherWriterButStatus) {
  json live = *ParseJson(R"({"metadata":{"annotations":{"d":"abc"},"managedFields":[
    {"manager":"ferry","operation":"Apply"},
    {"manager":"kube-controller-manager","operation":"Update","subresource":"status"}]}})");
  EXPECT_TRUE(OnlyAppliedBy(live, "ferry", "d", "abc"));
  EXPECT_FALSE(OnlyAppliedBy(live, "ferry", "d", "other"));  // Another version of the object.
  json edited = live;
  edited["metadata"]["managedFields"].push_back({{"manager", "kubectl-edit"}, {"operation", "Update"}});
  EXPECT_FALSE(OnlyAppliedBy(edited, "ferry", "d", "abc"));
  json scaled = live;
  scaled["metadata"]["managedFields"].push_back(
      {{"manager", "kubectl"}, {"operation", "Update"}, {"subresource", "scale"}});
  EXPECT_FALSE(OnlyAppliedBy(scaled, "ferry", "d", "abc"));
  json updated_by_ferry = live;
  updated_by_ferry["metadata"]["managedFields"][0]["operation"] = "Update";
  EXPECT_FALSE(OnlyAppliedBy(updated_by_ferry, "ferry", "d", "abc"));
  EXPECT_FALSE(OnlyAppliedBy(*ParseJson(R"({"metadata":{"annotations":{"d":"abc"}}})"), "ferry", "d", "abc"));
}

TEST(KubeObjectsTest, ManagedByReadsManagedFields) {
  json live = *ParseJson(R"({"metadata":{"managedFields":[{"manager":"kubectl"},{"manager":"ferry"}]}})");
  EXPECT_TRUE(ManagedBy(live, "ferry"));
  EXPECT_FALSE(ManagedBy(live, "helm"));
  EXPECT_FALSE(ManagedBy(*ParseJson(R"({"metadata":{}})"), "ferry"));
  EXPECT_FALSE(ManagedBy(*ParseJson(R"({"metadata":{"managedFields":"x"}})"), "ferry"));
}

}  // namespace
}  // namespace ferry::deployer::kubernetes
