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

// ferry.yaml `checks:` (docs/checks.md): commands Ferry runs over plans.
constexpr char kChecksBase[] =
    "environments:\n"
    "  staging: {host: {rootDir: /srv/staging}}\n"
    "  prod: {host: {rootDir: /srv/prod}, requiredChecks: [policy]}\n"
    "applications:\n"
    "  web: {environments: [staging, prod]}\n"
    "  api: {environments: [staging]}\n";

absl::Status ChecksError(const std::string& checks) {
  return ParseDeclarativeConfig(std::string(kChecksBase) + checks, "ferry.yaml", "r", "m").status();
}

TEST(DeclarativeChecksTest, ACheckIsAttachedToTheApplicationsAndEnvironmentsItNames) {
  auto c = ParseDeclarativeConfig(std::string(kChecksBase) +
                                      "checks:\n"
                                      "  policy:\n"
                                      "    command: [/usr/bin/conftest, test]\n"
                                      "    args: [manifests]\n"
                                      "    environments: [prod]\n"
                                      "    timeout: 90s\n"
                                      "    memoryLimit: 512Mi\n"
                                      "  lint:\n"
                                      "    command: kubeconform\n"
                                      "    applications: [api]\n",
                                  "ferry.yaml", "r", "m");
  ASSERT_TRUE(c.ok()) << c.status();
  const v1::Application& web = c->applications.at(0).id() == "web" ? c->applications.at(0) : c->applications.at(1);
  const v1::Application& api = c->applications.at(0).id() == "api" ? c->applications.at(0) : c->applications.at(1);
  ASSERT_EQ(web.checks_size(), 1);
  const v1::CheckCommand& policy = web.checks(0);
  EXPECT_EQ(policy.name(), "policy");
  EXPECT_EQ(std::vector<std::string>(policy.argv().begin(), policy.argv().end()),
            (std::vector<std::string>{"/usr/bin/conftest", "test", "manifests"}));
  EXPECT_EQ(std::vector<std::string>(policy.environment_ids().begin(), policy.environment_ids().end()),
            std::vector<std::string>{"prod"});
  EXPECT_EQ(policy.timeout().seconds(), 90);
  EXPECT_EQ(policy.memory_limit_bytes(), int64_t{512} << 20);
  // api does not deploy to prod: policy is not its check; lint (defaults) is.
  ASSERT_EQ(api.checks_size(), 1);
  EXPECT_EQ(api.checks(0).name(), "lint");
  EXPECT_EQ(api.checks(0).argv_size(), 1);
  EXPECT_TRUE(api.checks(0).environment_ids().empty());
  EXPECT_EQ(api.checks(0).timeout().seconds(), 60);
  EXPECT_EQ(api.checks(0).memory_limit_bytes(), int64_t{1} << 30);
}

TEST(DeclarativeChecksTest, BadChecksAreRefusedNamingTheField) {
  EXPECT_EQ(ChecksError("checks:\n  policy:\n    command: [/bin/true]\n    retries: 3\n").message(),
            "ferry.yaml:10: checks.policy.retries: unknown key");
  EXPECT_EQ(ChecksError("checks:\n  policy:\n    command: []\n").message(),
            "ferry.yaml:9: checks.policy.command: is empty");
  EXPECT_EQ(ChecksError("checks:\n  policy:\n    command: \"\"\n").message(),
            "ferry.yaml:9: checks.policy.command: is empty");
  EXPECT_EQ(ChecksError("checks:\n  policy:\n    timeout: 5s\n").message(),
            "ferry.yaml:9: checks.policy.command: is required (the program, or a list: program and arguments)");
  EXPECT_EQ(ChecksError("checks:\n  policy: {command: /bin/true, timeout: 100h}\n").message(),
            "ferry.yaml:8: checks.policy.timeout: \"100h\" must be whole seconds from 1s to 30m, e.g. 90s or 5m");
  EXPECT_EQ(ChecksError("checks:\n  policy: {command: /bin/true, timeout: 0s}\n").message(),
            "ferry.yaml:8: checks.policy.timeout: \"0s\" must be whole seconds from 1s to 30m, e.g. 90s or 5m");
  EXPECT_EQ(ChecksError("checks:\n  policy: {command: /bin/true, memoryLimit: 1Ki}\n").message(),
            "ferry.yaml:8: checks.policy.memoryLimit: \"1Ki\" is outside 16Mi to 64Gi");
  EXPECT_EQ(ChecksError("checks:\n  policy: {command: /bin/true, memoryLimit: 999999999999999Gi}\n").message(),
            "ferry.yaml:8: checks.policy.memoryLimit: \"999999999999999Gi\" is outside 16Mi to 64Gi");
  EXPECT_EQ(ChecksError("checks:\n  policy: {command: /bin/true, memoryLimit: -5Mi}\n").message(),
            "ferry.yaml:8: checks.policy.memoryLimit: \"-5Mi\" must be a size such as 512Mi or 2Gi");
  EXPECT_EQ(ChecksError("checks:\n  policy: {command: /bin/true, memoryLimit: lots}\n").message(),
            "ferry.yaml:8: checks.policy.memoryLimit: \"lots\" must be a size such as 512Mi or 2Gi");
  EXPECT_EQ(ChecksError("checks:\n  policy: {command: /bin/true, applications: [worker]}\n").message(),
            "ferry.yaml:8: checks.policy.applications[0]: no application \"worker\" in this file");
  EXPECT_EQ(ChecksError("checks:\n  policy: {command: /bin/true, applications: [api], environments: [prod]}\n").message(),
            "ferry.yaml:8: checks.policy.environments[0]: no application the check covers deploys to \"prod\"");
  EXPECT_EQ(ChecksError("checks:\n  policy: {command: /bin/true, args: -v}\n").message(),
            "ferry.yaml:8: checks.policy.args: must be a list of strings");
  EXPECT_EQ(ChecksError("checks: [policy]\n").message(), "ferry.yaml:7: checks: must be a mapping of name -> check");
}

TEST(DeclarativeConfigTest, ApplicationNotificationsAreReadAndBadOnesRefusedWithTheirLine) {
  const std::string head =
      "applications:\n"
      "  web:\n"
      "    environments: [prod]\n"
      "    notifications:\n";
  auto c = ParseDeclarativeConfig(head +
                                      "    - name: prod-failures\n"
                                      "      environment: prod\n"
                                      "      events: [deployment_failed, deployment_rolled_back]\n"
                                      "      template: \"{{application}} failed: {{message}}\"\n"
                                      "      sink: {kind: slack, urlSecret: {file: slack/web.url}}\n"
                                      "    - name: mail\n"
                                      "      events: plan_waiting_for_approval\n"
                                      "      sink:\n"
                                      "        kind: email\n"
                                      "        smtpUrl: smtps://smtp.example.com:465\n"
                                      "        smtpUsername: ferry\n"
                                      "        smtpPassword: {vault: {path: ferry/smtp, field: password}}\n"
                                      "        from: ferry@example.com\n"
                                      "        to: [ops@example.com]\n",
                                  "ferry.yaml", "r", "m");
  ASSERT_TRUE(c.ok()) << c.status();
  const v1::Application& app = c->applications.at(0);
  ASSERT_EQ(app.notifications_size(), 2);
  const v1::Subscription& slack = app.notifications(0);
  EXPECT_EQ(slack.name(), "prod-failures");
  EXPECT_EQ(slack.application_id(), "web");
  EXPECT_EQ(slack.environment_id(), "prod");
  ASSERT_EQ(slack.events_size(), 2);
  EXPECT_EQ(slack.events(1), v1::NOTIFICATION_EVENT_DEPLOYMENT_ROLLED_BACK);
  EXPECT_EQ(slack.template_(), "{{application}} failed: {{message}}");
  EXPECT_EQ(slack.sink().kind(), v1::SINK_KIND_SLACK);
  EXPECT_EQ(slack.sink().url_secret().file(), "slack/web.url");
  const v1::Subscription& mail = app.notifications(1);
  EXPECT_EQ(mail.events(0), v1::NOTIFICATION_EVENT_PLAN_WAITING_FOR_APPROVAL);
  EXPECT_EQ(mail.sink().smtp_url(), "smtps://smtp.example.com:465");
  EXPECT_EQ(mail.sink().smtp_password().vault().field(), "password");
  EXPECT_EQ(mail.sink().to(0), "ops@example.com");

  auto typo = ParseDeclarativeConfig(head + "    - name: x\n      enviroment: prod\n", "ferry.yaml", "r", "m");
  ASSERT_FALSE(typo.ok());
  EXPECT_EQ(typo.status().message(), "ferry.yaml:6: applications.web.notifications[0].enviroment: unknown key");
  auto event = ParseDeclarativeConfig(
      head + "    - name: x\n      events: [deployment_exploded]\n      sink: {kind: slack, urlSecret: {env: X}}\n",
      "ferry.yaml", "r", "m");
  ASSERT_FALSE(event.ok());
  EXPECT_NE(event.status().message().find(
                "ferry.yaml:6: applications.web.notifications[0].events[0]: unknown event \"deployment_exploded\""),
            std::string::npos)
      << event.status();
  auto kind = ParseDeclarativeConfig(head + "    - name: x\n      events: [deployment_failed]\n      sink: {kind: pager}\n",
                                     "ferry.yaml", "r", "m");
  ASSERT_FALSE(kind.ok());
  EXPECT_NE(kind.status().message().find("applications.web.notifications[0].sink.kind: must be webhook, slack, teams"),
            std::string::npos)
      << kind.status();
  auto inline_secret = ParseDeclarativeConfig(
      head + "    - name: x\n      events: [deployment_failed]\n      sink: {kind: webhook, hmacSecret: s3cret}\n",
      "ferry.yaml", "r", "m");
  ASSERT_FALSE(inline_secret.ok());
  EXPECT_NE(inline_secret.status().message().find("applications.web.notifications[0].sink.hmacSecret: must be a mapping"),
            std::string::npos)
      << inline_secret.status();
  EXPECT_EQ(inline_secret.status().message().find("s3cret"), std::string::npos);
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
