// DeploymentDiffer: the per-object diff of two recorded deployments'
// manifests, with Secret values masked.

#include "services/deployer/deployment_differ.h"

#include <gtest/gtest.h>

#include "tests/deployer/fake_deployment_store.h"

namespace ferry::deployer {
namespace {

using testing::FakeDeploymentStore;

v1::Manifest Object(const std::string& kind, const std::string& name, const std::string& json) {
  v1::Manifest m;
  m.mutable_object()->set_kind(kind);
  m.mutable_object()->set_namespace_("default");
  m.mutable_object()->set_name(name);
  m.mutable_object()->set_version("v1");
  m.set_json(json);
  return m;
}

void Record(FakeDeploymentStore& store, const std::string& id, const std::vector<v1::Manifest>& manifests) {
  v1::Deployment d;
  d.set_id(id);
  d.set_application_id("web");
  d.set_environment_id("prod");
  d.set_state(v1::DEPLOYMENT_STATE_SUCCEEDED);
  v1::Plan spec;
  for (const v1::Manifest& m : manifests) *spec.add_manifests() = m;
  ASSERT_TRUE(store.Create(d, spec, {}).ok());
}

TEST(DeploymentDifferTest, ListsAddedRemovedAndChangedObjectsWithPatches) {
  FakeDeploymentStore store;
  Record(store, "d1",
         {Object("ConfigMap", "settings", R"({"kind":"ConfigMap","data":{"mode":"a"}})"),
          Object("ConfigMap", "same", R"({"kind":"ConfigMap","data":{"x":"1"}})"),
          Object("Service", "old", R"({"kind":"Service"})")});
  Record(store, "d2",
         {Object("ConfigMap", "settings", R"({"kind":"ConfigMap","data":{"mode":"b"}})"),
          Object("ConfigMap", "same", R"({"kind":"ConfigMap","data":{"x":"1"}})"),
          Object("Process", "new", R"({"kind":"Process"})")});
  DeploymentDiffer differ(&store);
  v1::DiffDeploymentsRequest req;
  req.set_from_deployment_id("d1");
  req.set_to_deployment_id("d2");
  absl::StatusOr<v1::DiffDeploymentsResponse> diff = differ.Diff(req);
  ASSERT_TRUE(diff.ok()) << diff.status();
  EXPECT_EQ(diff->from().id(), "d1");
  EXPECT_EQ(diff->to().id(), "d2");
  EXPECT_EQ(diff->unchanged(), 1);
  ASSERT_EQ(diff->objects_size(), 3);
  EXPECT_EQ(diff->objects(0).object().name(), "settings");
  EXPECT_EQ(diff->objects(0).change(), v1::OBJECT_CHANGE_CHANGED);
  EXPECT_EQ(diff->objects(0).json_patch(), R"([{"op":"replace","path":"/data/mode","value":"b"}])");
  EXPECT_EQ(diff->objects(1).object().name(), "new");
  EXPECT_EQ(diff->objects(1).change(), v1::OBJECT_CHANGE_ADDED);
  EXPECT_EQ(diff->objects(2).object().name(), "old");
  EXPECT_EQ(diff->objects(2).change(), v1::OBJECT_CHANGE_REMOVED);
}

TEST(DeploymentDifferTest, SecretValuesAppearOnlyAsDigests) {
  FakeDeploymentStore store;
  // "aHVudGVyMg==" is base64 of "hunter2"; "c3dvcmRmaXNo" of "swordfish".
  Record(store, "d1", {Object("Secret", "db", R"({"apiVersion":"v1","kind":"Secret","data":{"password":"aHVudGVyMg=="}})")});
  Record(store, "d2", {Object("Secret", "db", R"({"apiVersion":"v1","kind":"Secret","data":{"password":"c3dvcmRmaXNo"}})")});
  DeploymentDiffer differ(&store);
  v1::DiffDeploymentsRequest req;
  req.set_from_deployment_id("d1");
  req.set_to_deployment_id("d2");
  absl::StatusOr<v1::DiffDeploymentsResponse> diff = differ.Diff(req);
  ASSERT_TRUE(diff.ok()) << diff.status();
  ASSERT_EQ(diff->objects_size(), 1);
  const std::string& patch = diff->objects(0).json_patch();
  EXPECT_NE(patch.find("sha256:"), std::string::npos) << patch;
  EXPECT_EQ(patch.find("c3dvcmRmaXNo"), std::string::npos) << patch;
  EXPECT_EQ(patch.find("swordfish"), std::string::npos) << patch;
}

TEST(DeploymentDifferTest, WithoutAFromEveryObjectIsAddedAndUnknownIdsAreNotFound) {
  FakeDeploymentStore store;
  Record(store, "d1", {Object("ConfigMap", "settings", R"({"kind":"ConfigMap"})")});
  DeploymentDiffer differ(&store);
  v1::DiffDeploymentsRequest req;
  req.set_to_deployment_id("d1");
  absl::StatusOr<v1::DiffDeploymentsResponse> diff = differ.Diff(req);
  ASSERT_TRUE(diff.ok()) << diff.status();
  EXPECT_FALSE(diff->has_from());
  ASSERT_EQ(diff->objects_size(), 1);
  EXPECT_EQ(diff->objects(0).change(), v1::OBJECT_CHANGE_ADDED);

  req.set_from_deployment_id("nope");
  EXPECT_EQ(differ.Diff(req).status().code(), absl::StatusCode::kNotFound);
  req.clear_to_deployment_id();
  EXPECT_EQ(differ.Diff(req).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ferry::deployer
