// The planner's side of the terraform target: a folder of .tf files becomes
// one Stack object, and the plan digest of the deployer's dry run is pinned
// into the planned object (only the deployer's own digest counts).

#include "services/planner/terraform_plans.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/json/json.h"
#include "services/planner/render_failure.h"

namespace ferry::planner {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

TreeEntry File(const std::string& path, const std::string& data) {
  TreeEntry e;
  e.path = path;
  e.data = data;
  return e;
}

TEST(TerraformPlansTest, AFolderOfTfFilesIsOneStackWithItsFilesAndTheEnvironmentsVariables) {
  absl::StatusOr<v1::Manifest> m = RenderTerraformStack(
      "infra", "apps/infra",
      {File("apps/infra/main.tf", "resource \"terraform_data\" \"x\" {}\n"), File("apps/infra/ferry.yaml", "x: 1\n"),
       File("apps/infra/modules/m/main.tf", "variable \"a\" {}\n"), File("apps/infra/.terraform/junk", "j"),
       File("apps/other/main.tf", "no")},
      {{"region", "eu"}}, json{{"token", {{"secretRef", {{"env", "FERRY_SECRET_TOKEN"}}}}}});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->object().group(), "terraform.ferry.dev");
  EXPECT_EQ(m->object().kind(), "Stack");
  EXPECT_EQ(m->object().name(), "infra");
  json doc = *ParseJson(m->json());
  EXPECT_EQ(doc["spec"]["files"].size(), 2u);
  EXPECT_TRUE(doc["spec"]["files"].contains("main.tf"));
  EXPECT_TRUE(doc["spec"]["files"].contains("modules/m/main.tf"));
  EXPECT_EQ(doc["spec"]["variables"]["region"], "eu");
  EXPECT_EQ(doc["spec"]["secretVariables"]["token"]["secretRef"]["env"], "FERRY_SECRET_TOKEN");
}

TEST(TerraformPlansTest, AFolderWithoutTfFilesOrWithBinaryFilesIsARenderFailureNamingIt) {
  absl::StatusOr<v1::Manifest> none = RenderTerraformStack("infra", "infra", {File("infra/README.md", "hi")}, {}, json());
  ASSERT_FALSE(none.ok());
  EXPECT_TRUE(IsRenderFailure(none.status()));
  EXPECT_THAT(none.status().message(), HasSubstr(".tf"));
  absl::StatusOr<v1::Manifest> binary = RenderTerraformStack(
      "infra", "infra", {File("infra/main.tf", "x"), File("infra/blob.bin", std::string("a\0b", 3))}, {}, json());
  ASSERT_FALSE(binary.ok());
  EXPECT_THAT(binary.status().message(), HasSubstr("infra/blob.bin"));
  TreeEntry link = File("infra/link.tf", "");
  link.type = v1::CONTENT_ENTRY_TYPE_SYMLINK;
  absl::StatusOr<v1::Manifest> symlink = RenderTerraformStack("infra", "infra", {File("infra/main.tf", "x"), link}, {}, json());
  ASSERT_FALSE(symlink.ok());
  EXPECT_THAT(symlink.status().message(), HasSubstr("infra/link.tf"));
}

TEST(TerraformPlansTest, TheDryRunsPlanDigestIsPinnedAndARenderedOneIsDropped) {
  absl::StatusOr<v1::Manifest> stack =
      RenderTerraformStack("infra", "infra", {File("infra/main.tf", "x")}, {}, json());
  ASSERT_TRUE(stack.ok());
  json forged = *ParseJson(stack->json());
  forged["spec"]["planDigest"] = "sha256:forged";
  stack->set_json(forged.dump());
  std::vector<v1::Manifest> manifests = {*stack};

  v1::LiveState live;
  v1::LiveObject* lo = live.add_objects();
  *lo->mutable_object() = stack->object();
  lo->set_dry_run_json(R"({"planDigest":"sha256:abc","plan":{}})");
  PinTerraformPlans(manifests, live);
  EXPECT_EQ((*ParseJson(manifests[0].json()))["spec"]["planDigest"], "sha256:abc");

  // A dry run without changes (or none at all): no digest, the forged one gone.
  manifests = {*stack};
  lo->set_dry_run_json(R"({"spec":{}})");
  PinTerraformPlans(manifests, live);
  EXPECT_FALSE((*ParseJson(manifests[0].json()))["spec"].contains("planDigest"));
  manifests = {*stack};
  PinTerraformPlans(manifests, v1::LiveState());
  EXPECT_FALSE((*ParseJson(manifests[0].json()))["spec"].contains("planDigest"));
}

TEST(TerraformPlansTest, TheEnvironmentsVariablesGoIntoTheStackWithTheApplicationsOwnOverThem) {
  absl::StatusOr<v1::Manifest> m =
      RenderTerraformStack("infra", "apps/infra", {File("apps/infra/main.tf", "variable \"a\" {}\n")}, {}, json());
  ASSERT_TRUE(m.ok()) << m.status();
  v1::DeployTarget target;
  target.set_kind(v1::TARGET_KIND_TERRAFORM);
  v1::TerraformTargetConfig* t = target.mutable_terraform();
  (*t->mutable_variables())["region"] = "eu";
  (*t->mutable_variables())["size"] = "env-wide";
  (*t->mutable_variables())["token"] = "plain-for-others";
  (*t->mutable_secret_variables())["db"].mutable_vault()->set_path("secret/data/db");
  (*t->mutable_secret_variables())["db"].mutable_vault()->set_field("pw");
  (*t->mutable_applications())["infra"].mutable_variables()->insert({"size", "small"});
  (*(*t->mutable_applications())["infra"].mutable_secret_variables())["token"].set_env("FERRY_SECRET_TOKEN");
  (*t->mutable_applications())["other"].mutable_variables()->insert({"region", "us"});
  std::vector<v1::Manifest> ms{*m};
  AddTerraformVariables(ms, "infra", target);
  json doc = *ParseJson(ms[0].json());
  EXPECT_EQ(doc["spec"]["variables"], (json{{"region", "eu"}, {"size", "small"}}));
  EXPECT_EQ(doc["spec"]["secretVariables"],
            (json{{"db", {{"secretRef", {{"vault", {{"path", "secret/data/db"}, {"field", "pw"}}}}}}},
                  {"token", {{"secretRef", {{"env", "FERRY_SECRET_TOKEN"}}}}}}));
  // Another target kind: left as rendered.
  std::vector<v1::Manifest> host{*m};
  v1::DeployTarget h;
  h.set_kind(v1::TARGET_KIND_HOST);
  AddTerraformVariables(host, "infra", h);
  EXPECT_EQ(host[0].json(), m->json());
}

TEST(TerraformPlansTest, AFailedOrMissingTerraformPlanIsARenderFailureNamingTheStack) {
  absl::StatusOr<v1::Manifest> m =
      RenderTerraformStack("infra", "apps/infra", {File("apps/infra/main.tf", "variable \"a\" {}\n")}, {}, json());
  ASSERT_TRUE(m.ok()) << m.status();
  std::vector<v1::Manifest> ms{*m};
  v1::LiveState live;
  absl::Status none = TerraformDryRunFailure(ms, live);
  EXPECT_TRUE(IsRenderFailure(none)) << none;
  EXPECT_THAT(std::string(none.message()), HasSubstr("no Terraform plan of Stack \"infra\""));
  v1::LiveObject* lo = live.add_objects();
  *lo->mutable_object() = m->object();
  lo->set_dry_run_error("Error: Reference to undeclared input variable");
  absl::Status failed = TerraformDryRunFailure(ms, live);
  EXPECT_TRUE(IsRenderFailure(failed)) << failed;
  EXPECT_THAT(std::string(failed.message()),
              HasSubstr("terraform plan of Stack \"infra\" failed: Error: Reference to undeclared input variable"));
  EXPECT_EQ(ToPlanFailure(failed).path(), "apps/infra/main.tf");
  lo->clear_dry_run_error();
  lo->set_dry_run_json("{\"spec\":{}}");
  EXPECT_TRUE(TerraformDryRunFailure(ms, live).ok());
}

}  // namespace
}  // namespace ferry::planner
