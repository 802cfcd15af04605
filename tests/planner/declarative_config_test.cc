// ferry.yaml read within the parse limits (issue 15). Its fields are tested
// in logic_test.cc.
#include "services/planner/declarative_config.h"

#include <map>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "services/planner/validation.h"

namespace ferry::planner {
namespace {

TEST(DeclarativeConfigLimitsTest, AliasesThatMultiplyApplicationsAreRefusedBeforeTheWalk) {
  // Each level repeats the one before ten times: 10^6 jsonPointers across
  // the applications once the parser's walk follows the aliases.
  std::string text =
      "x-p: &p [/a, /b, /c, /d, /e, /f, /g, /h, /i, /j]\n"
      "x-r: &r {kind: ConfigMap, jsonPointers: *p}\n"
      "x-l: &l [*r, *r, *r, *r, *r, *r, *r, *r, *r, *r]\n"
      "x-m: &m [*l, *l, *l, *l, *l, *l, *l, *l, *l, *l]\n"
      "applications:\n";
  for (int i = 0; i < 1000; ++i) absl::StrAppend(&text, "  a", i, ": {environments: [local], ignoreDifferences: *l}\n");
  ParseLimits limits;
  limits.max_yaml_nodes = 100000;
  auto c = ParseDeclarativeConfig(text, "deploy/ferry.yaml", "r", "refs/heads/main", limits);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(c.status().message().find("deploy/ferry.yaml:"), std::string::npos) << c.status();
  EXPECT_NE(c.status().message().find("more than 100000 YAML nodes after alias expansion (limit --max-yaml-nodes)"),
            std::string::npos)
      << c.status();
}

TEST(DeclarativeConfigLimitsTest, ARecursiveAliasAndDeepNestingAreRefused) {
  auto loop = ParseDeclarativeConfig("applications: &a {x: *a}\n", "ferry.yaml", "r", "m");
  ASSERT_FALSE(loop.ok());
  EXPECT_NE(loop.status().message().find("ferry.yaml:1: an alias refers to a node that contains it"), std::string::npos)
      << loop.status();
  auto deep = ParseDeclarativeConfig("applications: " + std::string(100000, '[') + std::string(100000, ']') + "\n",
                                     "ferry.yaml", "r", "m");
  ASSERT_FALSE(deep.ok());
  EXPECT_NE(deep.status().message().find("(limit --max-yaml-depth)"), std::string::npos) << deep.status();
}

TEST(DeclarativeConfigLimitsTest, TooManySyncWindowsAreRefusedWithTheirLine) {
  std::string text = "environments:\n  prod:\n    host: {rootDir: /srv/prod}\n    syncWindows:\n";
  for (int i = 0; i < 4; ++i) text += "    - {kind: allow, schedule: \"0 9 * * *\", duration: 1h}\n";
  SyncWindowLimits windows;
  windows.max_windows = 3;
  auto c = ParseDeclarativeConfig(text, "ferry.yaml", "r", "m", ParseLimits(), windows);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "ferry.yaml:5: environments.prod.syncWindows: 4 sync windows, more than 3 (limit --max-sync-windows)");
  auto fine = ParseDeclarativeConfig(text, "ferry.yaml", "r", "m");
  ASSERT_TRUE(fine.ok()) << fine.status();
  EXPECT_EQ(fine->environments.at(0).sync_windows_size(), 4);
}

TEST(DeclarativeConfigTest, HostRunAsAndSpecialModesAreReadAndCheckedWithTheirLine) {
  auto c = ParseDeclarativeConfig(
      "environments:\n"
      "  dev:\n"
      "    host:\n"
      "      rootDir: /srv/dev\n"
      "      runAs: {user: app-dev, group: \"1200\"}\n"
      "      allowSpecialModes: true\n"
      "  prod:\n"
      "    host: {rootDir: /srv/prod, runAs: {user: \"1201\"}}\n",
      "ferry.yaml", "r", "m");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->environments.size(), 2u);
  const v1::HostTargetConfig& dev = c->environments[0].target().host();
  EXPECT_EQ(dev.run_as().user(), "app-dev");
  EXPECT_EQ(dev.run_as().group(), "1200");
  EXPECT_FALSE(dev.run_as().allow_root());
  EXPECT_TRUE(dev.allow_special_modes());
  const v1::HostTargetConfig& prod = c->environments[1].target().host();
  EXPECT_EQ(prod.run_as().user(), "1201");
  EXPECT_TRUE(prod.run_as().group().empty());
  EXPECT_FALSE(prod.allow_special_modes());
  auto no_user = ParseDeclarativeConfig("environments:\n  dev:\n    host:\n      rootDir: /srv/dev\n      runAs: {group: x}\n",
                                        "ferry.yaml", "r", "m");
  ASSERT_FALSE(no_user.ok());
  EXPECT_EQ(no_user.status().message(), "ferry.yaml:5: environments.dev.host.runAs.user: is required (a user name or a uid)");
  auto typo = ParseDeclarativeConfig("environments:\n  dev:\n    host: {rootDir: /srv/dev, runAs: {user: a, uid: 3}}\n",
                                     "ferry.yaml", "r", "m");
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.status().message().find("environments.dev.host.runAs.uid: unknown key"), std::string::npos)
      << typo.status();
}

TEST(DeclarativeConfigTest, RequiredChecksAreReadInOrderAndBadOnesRefusedWithTheirLine) {
  auto c = ParseDeclarativeConfig(
      "environments:\n"
      "  prod:\n"
      "    host: {rootDir: /srv/prod}\n"
      "    requiredChecks: [ci/test, \"lint (eslint)\"]\n",
      "ferry.yaml", "r", "m");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->environments.at(0).required_checks_size(), 2);
  EXPECT_EQ(c->environments.at(0).required_checks(0), "ci/test");
  EXPECT_EQ(c->environments.at(0).required_checks(1), "lint (eslint)");

  auto scalar = ParseDeclarativeConfig("environments:\n  prod:\n    host: {rootDir: /srv/prod}\n    requiredChecks: ci\n",
                                       "ferry.yaml", "r", "m");
  ASSERT_FALSE(scalar.ok());
  EXPECT_EQ(scalar.status().message(),
            "ferry.yaml:4: environments.prod.requiredChecks: must be a list of check names, as the CI system reports "
            "them");
  auto twice = ParseDeclarativeConfig(
      "environments:\n  prod:\n    host: {rootDir: /srv/prod}\n    requiredChecks:\n    - ci\n    - ci\n",
      "ferry.yaml", "r", "m");
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.status().message(), "ferry.yaml:6: environments.prod.requiredChecks[1]: \"ci\" is listed twice");
  auto nested = ParseDeclarativeConfig(
      "environments:\n  prod:\n    host: {rootDir: /srv/prod}\n    requiredChecks: [{name: ci}]\n", "ferry.yaml", "r",
      "m");
  ASSERT_FALSE(nested.ok());
  EXPECT_NE(nested.status().message().find("environments.prod.requiredChecks[0]: must be a string"), std::string::npos)
      << nested.status();
}

TEST(DeclarativeConfigTest, TerraformEnvironmentsAndApplicationsAreReadAndValidated) {
  auto c = ParseDeclarativeConfig(R"(
environments:
  infra:
    terraform:
      state: pg
      variables: {environment: infra, replicas: 3}
      secretVariables:
        api_token: {vault: {path: secret/data/infra, field: token}}
      applications:
        net:
          variables: {cidr: 10.0.0.0/16}
          secretVariables: {db_password: {file: db-password}}
      runAs: {user: nobody}
      memoryLimitMb: 2048
      cpuLimitSeconds: 300
      timeout: 5m
  sandbox:
    terraform:
applications:
  net:
    path: apps/net
    render: terraform
    environments: [infra, sandbox]
)",
                                  "ferry.yaml", "config", "refs/heads/main");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->environments.size(), 2u);
  std::map<std::string, v1::Environment> envs;
  for (const auto& e : c->environments) envs[e.id()] = e;
  const v1::DeployTarget& t = envs["infra"].target();
  EXPECT_EQ(t.kind(), v1::TARGET_KIND_TERRAFORM);
  EXPECT_EQ(t.terraform().state(), v1::TERRAFORM_STATE_PG);
  EXPECT_EQ(t.terraform().variables().at("replicas"), "3");
  EXPECT_EQ(t.terraform().secret_variables().at("api_token").vault().field(), "token");
  EXPECT_EQ(t.terraform().applications().at("net").variables().at("cidr"), "10.0.0.0/16");
  EXPECT_EQ(t.terraform().applications().at("net").secret_variables().at("db_password").file(), "db-password");
  EXPECT_EQ(t.terraform().run_as().user(), "nobody");
  EXPECT_EQ(t.terraform().memory_limit_mb(), 2048u);
  EXPECT_EQ(t.terraform().cpu_limit_seconds(), 300u);
  EXPECT_EQ(t.terraform().timeout_seconds(), 300u);
  EXPECT_EQ(envs["sandbox"].target().kind(), v1::TARGET_KIND_TERRAFORM);
  EXPECT_EQ(envs["sandbox"].target().terraform().state(), v1::TERRAFORM_STATE_PG);
  EXPECT_EQ(c->applications[0].render_method(), v1::RENDER_METHOD_TERRAFORM);
  std::map<std::string, v1::Environment> seen;
  for (const auto& e : c->environments) {
    EXPECT_TRUE(ValidateEnvironment(e, seen).ok()) << e.id() << ": " << ValidateEnvironment(e, seen);
    seen[e.id()] = e;
  }
  v1::Application app = c->applications[0];
  EXPECT_TRUE(ValidateApplication(app, {"infra", "sandbox"}).ok());
}

TEST(DeclarativeConfigTest, TerraformMistakesNameTheFieldAndTheLine) {
  auto parse = [](const std::string& terraform) {
    return ParseDeclarativeConfig("environments:\n  infra:\n    terraform:\n" + terraform, "ferry.yaml", "r", "m");
  };
  auto state = parse("      state: s3\n");
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.status().message(),
            "ferry.yaml:4: environments.infra.terraform.state: must be pg or configured, got \"s3\"");
  auto typo = parse("      variabels: {a: b}\n");
  EXPECT_NE(typo.status().message().find("environments.infra.terraform.variabels: unknown key"), std::string::npos)
      << typo.status();
  auto memory = parse("      memoryLimitMb: lots\n");
  EXPECT_NE(memory.status().message().find("environments.infra.terraform.memoryLimitMb: must be a positive whole number"),
            std::string::npos)
      << memory.status();
  auto secret = parse("      secretVariables: {token: {file: a, env: B}}\n");
  EXPECT_NE(secret.status().message().find("environments.infra.terraform.secretVariables.token: needs exactly one of"),
            std::string::npos)
      << secret.status();
  auto app = parse("      applications: {net: {vars: {}}}\n");
  EXPECT_NE(app.status().message().find("environments.infra.terraform.applications.net.vars: unknown key"),
            std::string::npos)
      << app.status();
  auto nested = parse("      variables: {a: {b: c}}\n");
  EXPECT_NE(nested.status().message().find("environments.infra.terraform.variables.a: must be a string"),
            std::string::npos)
      << nested.status();
  auto both = ParseDeclarativeConfig(
      "environments:\n  p:\n    host: {rootDir: /x}\n    terraform: {}\n", "ferry.yaml", "r", "m");
  EXPECT_NE(both.status().message().find("has more than one of host, kubernetes, ansible and terraform"),
            std::string::npos)
      << both.status();

  // What the API takes is validated too (CreateEnvironment, not ferry.yaml).
  v1::Environment env;
  env.set_id("infra");
  env.mutable_target()->set_kind(v1::TARGET_KIND_TERRAFORM);
  env.mutable_target()->mutable_terraform();
  EXPECT_TRUE(ValidateEnvironment(env, {}).ok()) << ValidateEnvironment(env, {});
  (*env.mutable_target()->mutable_terraform()->mutable_variables())["1bad"] = "x";
  EXPECT_NE(ValidateEnvironment(env, {}).message().find("environment.target.terraform.variables: \"1bad\" is not a variable name"),
            std::string::npos)
      << ValidateEnvironment(env, {});
  env.mutable_target()->mutable_terraform()->clear_variables();
  (*env.mutable_target()->mutable_terraform()->mutable_variables())["token"] = "x";
  (*env.mutable_target()->mutable_terraform()->mutable_secret_variables())["token"].set_env("FERRY_SECRET_T");
  EXPECT_NE(ValidateEnvironment(env, {}).message().find("\"token\" is also in variables"), std::string::npos)
      << ValidateEnvironment(env, {});
  env.mutable_target()->clear_terraform();
  EXPECT_NE(ValidateEnvironment(env, {}).message().find("environment.target.terraform: is required"), std::string::npos)
      << ValidateEnvironment(env, {});
}

}  // namespace
}  // namespace ferry::planner
