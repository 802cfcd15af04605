// An environment's deployer group (issue #18, replicas): declared in
// ferry.yaml (`deployer:`), checked, and carried into every plan so that
// only deployers of that group take it.
#include <gtest/gtest.h>

#include "services/planner/declarative_config.h"
#include "services/planner/revision_planner.h"
#include "tests/planner/planner_fakes.h"

namespace ferry::planner {
namespace {

using testing::AppSpec;
using testing::ConfigMap;
using testing::EnvSpec;
using testing::kRef;
using testing::PlannerOverFakes;
using testing::User;

TEST(DeployerGroupTest, FerryYamlNamesTheOwningDeployerGroup) {
  auto c = ParseDeclarativeConfig(
      "environments:\n  edge:\n    host: {rootDir: /srv/edge}\n    deployer: edge-hosts\n  local:\n"
      "    host: {rootDir: /srv/local}\n",
      "ferry.yaml", "r", "refs/heads/main");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->environments.size(), 2u);
  EXPECT_EQ(c->environments[0].deployer_group(), "edge-hosts");
  EXPECT_EQ(c->environments[1].deployer_group(), "");  // The default group.
}

TEST(DeployerGroupTest, EveryPlanCarriesItsEnvironmentsGroupAndABadNameIsRefused) {
  PlannerOverFakes f;
  v1::Environment bad = EnvSpec("edge", v1::APPROVAL_POLICY_AUTO);
  bad.set_deployer_group("Edge Hosts");
  absl::StatusOr<v1::Environment> refused = f.planner.CreateEnvironment(bad, User("alice"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("environment.deployer_group: \"Edge Hosts\""), std::string::npos)
      << refused.status();

  v1::Environment edge = EnvSpec("edge", v1::APPROVAL_POLICY_AUTO);
  edge.set_deployer_group("edge-hosts");
  ASSERT_TRUE(f.planner.CreateEnvironment(edge, User("alice")).ok());
  ASSERT_TRUE(f.planner.CreateApplication(AppSpec("a", "apps/a", {"edge"}), User("alice")).ok());
  v1::Revision rev = f.repo.Commit("repo", kRef, {{"apps/a/cm.yaml", {ConfigMap("a", "1"), ""}}});
  ASSERT_EQ(*f.planner.revision_planner()->HandleRevision(rev), 1);
  ASSERT_EQ(f.Plans("a").size(), 1u);
  EXPECT_EQ(f.Plans("a")[0].deployer_group(), "edge-hosts");
}

}  // namespace
}  // namespace ferry::planner
