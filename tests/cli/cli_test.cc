// The ferry command against the real suite (four services, TLS, tokens):
// each command's output and exit code, tables against golden files.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/json/json.h"
#include "tests/cli/cli_harness.h"
#include "tests/support/test_certs.h"

namespace ferry::testing {
namespace {

constexpr int kUsage = 2;
constexpr int kWaitFailed = 3;

std::string Failing() {
  // A process whose health check always fails: the deployment rolls back.
  return "apiVersion: ferry.dev/v1\nkind: Process\nmetadata:\n  name: web-worker\n"
         "  annotations:\n    ferry.dev/sync-wave: \"1\"\nspec:\n"
         "  command: [\"/bin/sleep\", \"300\"]\n"
         "  healthCheck:\n    exec: {command: [\"/bin/false\"]}\n    periodSeconds: 0.1\n    failureThreshold: 1\n";
}


std::vector<nlohmann::json> JsonLines(const std::string& text) {
  std::vector<nlohmann::json> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    auto j = ParseJson(line);
    EXPECT_TRUE(j.ok()) << "not one JSON object a line: " << line;
    if (j.ok()) out.push_back(*j);
  }
  return out;
}

#define EXPECT_RUN(r, code)                                                  \
  EXPECT_EQ((r).exit_code, code) << "stdout:\n" << (r).out << "\nstderr:\n" << (r).err

TEST(CliTest, ReadCommandsShowTheSeededSuite) {
  SecureSuite suite;
  ASSERT_TRUE(suite.Start());
  ASSERT_TRUE(suite.Seed());
  CliHarness cli(suite);

  // status: both environments wait for approval, with the command to run.
  CliResult r = cli.Run({"status"});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "ferry plan approve " + suite.prod_plan())) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "ferry plan approve " + suite.staging_plan())) << r.out;
  EXPECT_FALSE(absl::StrContains(r.out, "\x1b[")) << "colour on a pipe: " << r.out;
  ExpectGolden("status.txt", r.out, suite.dir());

  r = cli.Run({"status", "-o", "json"});
  EXPECT_RUN(r, 0);
  std::vector<nlohmann::json> rows = JsonLines(r.out);
  ASSERT_EQ(rows.size(), 2u) << r.out;
  for (const auto& row : rows) {
    EXPECT_EQ(row["application"], "web");
    ASSERT_EQ(row["waiting"].size(), 1u) << row.dump();
    EXPECT_EQ(row["waiting"][0]["state"], "Pending");
    EXPECT_EQ(row["waiting"][0]["why"], "awaiting approval");
  }
  r = cli.Run({"status", "--env", "prod", "-o", "yaml"});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StartsWith(r.out, "---\napplication: \"web\"\n")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "\nenvironment: \"prod\"\n")) << r.out;

  r = cli.Run({"app", "list"});
  EXPECT_RUN(r, 0);
  ExpectGolden("app_list.txt", r.out, suite.dir());
  r = cli.Run({"app", "get", "web"});
  EXPECT_RUN(r, 0);
  ExpectGolden("app_get.txt", r.out, suite.dir());
  r = cli.Run({"app", "get", "web", "-o", "json"});
  EXPECT_RUN(r, 0);
  EXPECT_EQ(JsonLines(r.out).at(0)["environment_ids"], nlohmann::json({"staging", "prod"})) << r.out;

  r = cli.Run({"plan", "list", "--state", "pending"});
  EXPECT_RUN(r, 0);
  ExpectGolden("plan_list.txt", r.out, suite.dir());
  r = cli.Run({"plan", "show", suite.prod_plan()});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "=== Create ConfigFile/greeting")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "+    \"content\": \"hello\\n\"")) << r.out;

  // diff: per-object unified diff; --exit-code says whether anything differs.
  r = cli.Run({"app", "diff", "web", "--env", "prod", "--exit-code"});
  EXPECT_RUN(r, 1);
  EXPECT_TRUE(absl::StrContains(r.out, "+++ desired/ConfigFile/greeting")) << r.out;
  r = cli.Run({"app", "diff", "web", "--env", "prod", "--color", "always"});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "\x1b[32m+")) << r.out;
  r = cli.Run({"plan", "preview", "web", "--env", "staging", "--ref", "main"});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "1 to create")) << r.out;

  r = cli.Run({"env", "list"});
  EXPECT_RUN(r, 0);
  ExpectGolden("env_list.txt", r.out, suite.dir());
  r = cli.Run({"env", "get", "prod"});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "approval:      manual")) << r.out;

  r = cli.Run({"repo", "list"});
  EXPECT_RUN(r, 0);
  ExpectGolden("repo_list.txt", r.out, suite.dir());
  r = cli.Run({"repo", "get", "config"});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "refs/heads/main")) << r.out;
  r = cli.Run({"repo", "revisions", "config"});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StrContains(r.out, suite.head().substr(0, 7) + "  refs/heads/main")) << r.out;
  r = cli.Run({"repo", "refresh", "config"});
  EXPECT_RUN(r, 0);
  // Review events (#20): a check reported as CI would, listed back.
  r = cli.Run({"repo", "report-check", "config", suite.head(), "cli-tests", "success", "--url",
               "https://ci.example.com/runs/1"});
  EXPECT_RUN(r, 0);
  EXPECT_EQ(r.out, "check cli-tests of " + suite.head().substr(0, 7) + ": success\n");
  r = cli.Run({"repo", "checks", "config", suite.head()});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "cli-tests")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "success")) << r.out;
  EXPECT_RUN(cli.Run({"repo", "report-check", "config", suite.head(), "cli-tests", "great"}), kUsage);
  r = cli.Run({"repo", "report-check", "config", "abc", "cli-tests", "success"});
  EXPECT_RUN(r, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "sha: must be a full commit sha")) << r.err;
  r = cli.Run({"repo", "pulls"});
  EXPECT_RUN(r, 0);
  EXPECT_EQ(r.out, "no open pull requests\n");

  r = cli.Run({"config", "apply", "--repo", "config", "--path", "ferry.yaml", "--dry-run"});
  EXPECT_RUN(r, 0);
  ExpectGolden("config_apply_dry_run.txt", r.out, suite.dir());
  r = cli.Run({"config", "apply", "ferry.yaml"});
  EXPECT_RUN(r, kUsage);
  EXPECT_TRUE(absl::StrContains(r.err, "ferry config apply --repo REPO --path ferry.yaml")) << r.err;

  r = cli.Run({"audit", "query", "--app", "web", "--since", "1h", "--action", "plan-created"});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "PLAN_CREATED")) << r.out;
  EXPECT_FALSE(absl::StrContains(r.out, "REVISION_DETECTED")) << r.out;
  r = cli.Run({"audit", "query", "--action", "no-such-action"});
  EXPECT_RUN(r, kUsage);
  r = cli.Run({"audit", "verify"});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StartsWith(r.out, "OK: the audit chain is intact")) << r.out;
  r = cli.Run({"audit", "export"});
  EXPECT_RUN(r, 0);
  std::vector<nlohmann::json> events = JsonLines(r.out);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back()["hash"].get<std::string>().size(), 64u);
  r = cli.Run({"audit", "tail", "-n", "3", "-o", "json"});
  EXPECT_RUN(r, 0);
  EXPECT_EQ(JsonLines(r.out).size(), 3u) << r.out;

  r = cli.Run({"whoami"});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StartsWith(r.out, "user:admin (token:")) << r.out;

  // Completion scripts parse in their shells.
  r = cli.Run({"completion", "bash"});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "[\"app\"]=\"list get create rm diff sync history rollback pin unpin wait refresh\""))
      << r.out;
  {
    std::ofstream(cli.dir() + "/completion.bash") << r.out;
    EXPECT_EQ(std::system(("bash -n " + cli.dir() + "/completion.bash").c_str()), 0);
  }
  EXPECT_RUN(cli.Run({"completion", "fish"}), 0);
  EXPECT_RUN(cli.Run({"completion", "zsh"}), 0);
  EXPECT_RUN(cli.Run({"completion", "tcsh"}), kUsage);
}

TEST(CliTest, ApproveSyncWaitRollBackAndPin) {
  SecureSuite suite;
  ASSERT_TRUE(suite.Start());
  ASSERT_TRUE(suite.Seed());
  CliHarness cli(suite);

  CliResult r = cli.Run({"plan", "approve", suite.staging_plan(), "--comment", "ship it"});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "approved")) << r.out;
  // The deployment may be over before `app wait` asks: it then checks health.
  r = cli.Run({"app", "wait", "web", "--env", "staging", "--timeout", "60s"});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "web in staging is Healthy")) << r.out;
  const std::string first = suite.head();

  // sync --wait of a new commit: plans, approves as the caller, follows.
  const std::string v2 = suite.CommitGreeting("v2");
  r = cli.Run({"app", "sync", "web", "--env", "staging", "--approve", "--wait", "--timeout", "90s"});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "Succeeded: dep-")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, v2.substr(0, 7))) << r.out;
  // A pipe gets plain lines, one per finished step, never a redrawn line.
  EXPECT_TRUE(absl::StrContains(r.out, "Apply       Update   ConfigFile/greeting  Succeeded")) << r.out;
  EXPECT_FALSE(absl::StrContains(r.out, "\r")) << r.out;
  r = cli.Run({"app", "sync", "web", "--env", "staging"});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "is up to date")) << r.out;

  // -o json: one object a line while following.
  const std::string v3 = suite.CommitGreeting("v3");
  r = cli.Run({"app", "sync", "web", "--env", "staging", "--approve", "--wait", "-o", "json"});
  EXPECT_RUN(r, 0);
  std::vector<nlohmann::json> lines = JsonLines(r.out);
  ASSERT_GE(lines.size(), 3u);
  EXPECT_EQ(lines.back()["event"], "deployment") << r.out;
  EXPECT_EQ(lines.back()["state"], "DEPLOYMENT_STATE_SUCCEEDED") << r.out;

  // A revision whose health check fails: waited, and it rolled back: exit 3.
  const std::string bad = suite.CommitFiles({{"apps/web/worker.yaml", Failing()}}, "a worker that never gets healthy");
  r = cli.Run({"app", "sync", "web", "--env", "staging", "--approve", "--wait", "--timeout", "120s"});
  EXPECT_RUN(r, kWaitFailed);
  EXPECT_TRUE(absl::StrContains(r.err, "ferry app history web --env staging")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "✗")) << r.out;

  r = cli.Run({"app", "history", "web", "--env", "staging"});
  EXPECT_RUN(r, 0);
  ExpectGolden("app_history.txt", r.out, suite.dir());

  // Roll back to v2 by a prefix of its sha, following it.
  r = cli.Run({"app", "rollback", "web", "--env", "staging", v2.substr(0, 8), "--wait", "--timeout", "90s"});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "back to " + v2.substr(0, 7))) << r.out;
  r = cli.Run({"status", "--app", "web", "--env", "staging"});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "pinned at " + v2.substr(0, 7))) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "`ferry app unpin web --env staging`")) << r.out;
  r = cli.Run({"app", "rollback", "web", "--env", "staging", "0000000"});
  EXPECT_RUN(r, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "ferry app history web --env staging")) << r.err;

  r = cli.Run({"app", "unpin", "web", "--env", "staging"});
  EXPECT_RUN(r, 0);
  r = cli.Run({"app", "pin", "web", "--env", "staging", "--reason", "freeze"});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "is pinned in staging")) << r.out;
  r = cli.Run({"status", "--app", "web", "--env", "staging", "-o", "json"});
  EXPECT_EQ(JsonLines(r.out).at(0)["pin"]["reason"], "freeze") << r.out;

  // Time travel and DORA over what just happened (the audit log gets the
  // deployer's events through its outbox: wait for the rollback's).
  std::vector<nlohmann::json> changes;
  for (int i = 0; i < 100; ++i) {
    r = cli.Run({"history", "changes", "--since", "1h", "--env", "staging", "-o", "json"});
    EXPECT_RUN(r, 0);
    if (absl::StrContains(r.out, "DEPLOYMENT_KIND_ROLLBACK")) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  std::vector<nlohmann::json> listed = JsonLines(r.out);
  ASSERT_EQ(listed.size(), 1u) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "AUDIT_ACTION_DEPLOYMENT_ROLLED_BACK")) << r.out;
  r = cli.Run({"history", "at", "--app", "web", "--env", "staging", "-o", "json"});
  EXPECT_RUN(r, 0);
  std::vector<nlohmann::json> live = JsonLines(r.out);
  ASSERT_EQ(live.size(), 1u) << r.out;
  EXPECT_EQ(live[0]["commit_sha"], v2) << r.out;
  EXPECT_EQ(live[0]["kind"], "DEPLOYMENT_KIND_ROLLBACK") << r.out;
  r = cli.Run({"history", "at", "2000-01-01T00:00:00Z"});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "nothing was deployed at 2000-01-01T00:00:00Z")) << r.out;
  // Everything happened within the hour: staging moved from nothing to the
  // rollback, whose objects are all added.
  r = cli.Run({"history", "changes", "--since", "1h", "--env", "staging", "--diff"});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "web/staging: - -> dep-")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "+ ConfigFile ")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "greeting")) << r.out;
  // Staging's changes: four rollouts (one failed, rolled back automatically)
  // and the manual rollback.
  r = cli.Run({"dora", "--since", "1h", "--env", "staging", "-o", "json"});
  EXPECT_RUN(r, 0);
  std::vector<nlohmann::json> dora = JsonLines(r.out);
  ASSERT_EQ(dora.size(), 1u) << r.out;
  EXPECT_EQ(dora[0]["total"]["deployments"], "5") << r.out;
  EXPECT_EQ(dora[0]["total"]["failed_deployments"], "1") << r.out;
  EXPECT_EQ(dora[0]["total"]["change_failure_rate"], 0.2) << r.out;
  EXPECT_EQ(dora[0]["total"]["restored_failures"], "1") << r.out;
  r = cli.Run({"dora", "--since", "1h", "--env", "staging"});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "20%")) << r.out;
  r = cli.Run({"history", "changes", "--since", "yesterday"});
  EXPECT_RUN(r, kUsage);
  EXPECT_TRUE(absl::StrContains(r.err, "--since yesterday")) << r.err;
  (void)first;
  (void)v3;
  (void)bad;
}

TEST(CliTest, CreateChangeAndRemoveEverything) {
  SecureSuite suite;
  ASSERT_TRUE(suite.Start());
  ASSERT_TRUE(suite.Seed());
  CliHarness cli(suite);

  CliResult r = cli.Run({"env", "create", "qa", "--host-root", suite.dir() + "/env-qa", "--approval", "auto"});
  EXPECT_RUN(r, 0);
  r = cli.Run({"env", "create", "qa2", "--host-root", suite.dir() + "/env-qa2", "--approval", "sometimes"});
  EXPECT_RUN(r, kUsage);
  r = cli.Run({"app", "create", "api", "--repo", "config", "--path", "apps/web", "--env", "qa", "--auto"});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "application api created")) << r.out;
  r = cli.Run({"app", "create", "api", "--repo", "config", "--path", "apps/web", "--env", "qa"});
  EXPECT_RUN(r, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "already exists")) << r.err;
  r = cli.Run({"app", "refresh", "api"});
  EXPECT_RUN(r, 0);
  r = cli.Run({"app", "wait", "api", "--timeout", "60s"});  // one environment: no --env needed
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "api in qa is Healthy")) << r.out;

  // Declared in Git: the API refuses, and says where to change it.
  r = cli.Run({"app", "rm", "web"});
  EXPECT_RUN(r, 1);
  r = cli.Run({"env", "rm", "qa"});
  EXPECT_RUN(r, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "`ferry app list --env qa`")) << r.err;
  EXPECT_RUN(cli.Run({"app", "rm", "api"}), 0);
  EXPECT_RUN(cli.Run({"env", "rm", "qa"}), 0);
  r = cli.Run({"env", "get", "qa"});
  EXPECT_RUN(r, 1);

  r = cli.Run({"repo", "add", "other", suite.dir() + "/git/remote.git", "--branch", "main", "--poll", "5s"});
  EXPECT_RUN(r, 0);
  r = cli.Run({"repo", "update", "other", "--poll", "10s"});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "updated (poll_interval)")) << r.out;
  r = cli.Run({"repo", "get", "other", "-o", "json"});
  EXPECT_RUN(r, 0);
  EXPECT_EQ(JsonLines(r.out).at(0)["poll_interval"], "10s") << r.out;
  EXPECT_RUN(cli.Run({"repo", "update", "other"}), kUsage);
  EXPECT_RUN(cli.Run({"repo", "rm", "other"}), 0);
  EXPECT_RUN(cli.Run({"repo", "get", "other"}), 1);

  // Tokens: the secret alone on stdout; revoked, it stops working.
  r = cli.Run({"token", "create", "bob", "--group", "devs", "--ttl", "1h"});
  EXPECT_RUN(r, 0);
  const std::string secret(absl::StripAsciiWhitespace(r.out));
  ASSERT_TRUE(absl::StartsWith(secret, "ferry_")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.err, "shown this once")) << r.err;
  r = cli.Run({"whoami"}, {"FERRY_TOKEN=" + secret});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StartsWith(r.out, "user:bob ")) << r.out;
  r = cli.Run({"token", "list", "--subject", "bob"});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "devs")) << r.out;
  EXPECT_RUN(cli.Run({"token", "revoke", secret.substr(6, 12)}), 0);
  EXPECT_TRUE(SecureSuite::Eventually([&] { return cli.Run({"whoami"}, {"FERRY_TOKEN=" + secret}).exit_code == 1; }));
}

TEST(CliTest, StatusShowsDriftAndSyncPutsGitsVersionBack) {
  SecureSuite suite;
  ASSERT_TRUE(suite.Start());
  ASSERT_TRUE(suite.Seed());
  CliHarness cli(suite);
  EXPECT_RUN(cli.Run({"plan", "approve", suite.staging_plan()}), 0);
  EXPECT_RUN(cli.Run({"app", "wait", "web", "--env", "staging", "--timeout", "60s"}), 0);
  {
    v1::UpdateDriftSettingsRequest req;
    req.mutable_settings()->set_application_id("web");
    req.mutable_settings()->set_environment_id("staging");
    req.mutable_settings()->mutable_interval()->set_seconds(1);
    req.mutable_update_mask()->add_paths("interval");
    v1::DriftSettings out;
    grpc::Status st = suite.Deployer()->UpdateDriftSettings(SecureSuite::Context(suite.admin_token()).get(), req, &out);
    ASSERT_TRUE(st.ok()) << Describe(st);
  }
  const std::string file = suite.dir() + "/env-staging/web/greeting.txt";
  ASSERT_TRUE(std::filesystem::exists(file)) << file;
  std::ofstream(file, std::ios::trunc) << "edited by hand\n";
  CliResult r;
  EXPECT_TRUE(SecureSuite::Eventually(
      [&] {
        r = cli.Run({"status", "--app", "web", "--env", "staging", "-o", "json"});
        auto rows = JsonLines(r.out);
        return !rows.empty() && !rows[0]["drift"].empty();
      },
      absl::Seconds(30)))
      << r.out << r.err;
  r = cli.Run({"status", "--app", "web", "--env", "staging"});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "OutOfSync")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "drift: 1 object")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "drifted from Git (ConfigFile/greeting modified)")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "`ferry app sync web --env staging` puts Git's version back")) << r.out;

  r = cli.Run({"app", "sync", "web", "--env", "staging", "--approve", "--wait", "--timeout", "60s"});
  EXPECT_RUN(r, 0);
  std::ifstream in(file);
  std::stringstream content;
  content << in.rdbuf();
  EXPECT_EQ(content.str(), "hello\n");
}

TEST(CliTest, ErrorsSayWhatToDoNext) {
  SecureSuite suite;
  ASSERT_TRUE(suite.Start());
  ASSERT_TRUE(suite.Seed());
  CliHarness cli(suite);

  // Usage: exit 2.
  CliResult r = cli.Run({"app", "sync"});
  EXPECT_RUN(r, kUsage);
  r = cli.Run({"app", "sync", "web"});
  EXPECT_RUN(r, kUsage);
  EXPECT_TRUE(absl::StrContains(r.err, "deploys to staging, prod: name one with --env")) << r.err;
  r = cli.Run({"status", "-o", "xml"});
  EXPECT_RUN(r, kUsage);

  // A bad token: what to do about it.
  r = cli.Run({"status"}, {"FERRY_TOKEN=ferry_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"});
  EXPECT_RUN(r, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "did not accept your token")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "ferry login")) << r.err;

  // A viewer approving: who you are, and who grants roles.
  std::string viewer = suite.CreateToken("viewer");
  r = cli.Run({"plan", "approve", suite.prod_plan()}, {"FERRY_TOKEN=" + viewer});
  EXPECT_RUN(r, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "ferry whoami")) << r.err;
  EXPECT_EQ(suite.GetPlan(suite.prod_plan()).state(), v1::PLAN_STATE_PENDING);
  r = cli.Run({"status"}, {"FERRY_TOKEN=" + viewer});
  EXPECT_RUN(r, 0);

  // Approving a plan that is not pending names the state.
  r = cli.Run({"plan", "reject", suite.staging_plan()});
  EXPECT_RUN(r, 0);
  r = cli.Run({"plan", "approve", suite.staging_plan()});
  EXPECT_RUN(r, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "ferry plan show " + suite.staging_plan())) << r.err;

  // Pull-request previews: none yet; an unknown one is NOT_FOUND, said.
  r = cli.Run({"pr", "list", "config"});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "no open pull request of config has a preview")) << r.out;
  r = cli.Run({"pr", "show", "config", "42"});
  EXPECT_RUN(r, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "no preview of pull request 42")) << r.err;
  r = cli.Run({"pr", "show", "config"});
  EXPECT_RUN(r, kUsage);

  // Unknown names point at the list.
  r = cli.Run({"app", "get", "nope"});
  EXPECT_RUN(r, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "`ferry app list`")) << r.err;

  // Nobody answering, and the wrong CA.
  r = cli.Run({"status", "--server", "127.0.0.1:1"});
  EXPECT_RUN(r, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "does not answer")) << r.err;
  r = cli.Run({"status", "--ca-file", TestCerts::Get().other_ca()});
  EXPECT_RUN(r, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "TLS handshake failed")) << r.err;

  // No configuration at all.
  r = cli.Run({"status"}, {"FERRY_CONFIG=" + cli.dir() + "/none.yaml"});
  EXPECT_RUN(r, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "Run `make up`")) << r.err;

  // The deployer down: status still shows what the planner knows, and says
  // what it could not read.
  ASSERT_TRUE(suite.process("deployer").Stop().ok());
  r = cli.Run({"status", "--request-timeout", "3s"});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "awaiting approval (" + suite.prod_plan())) << r.out;
  EXPECT_TRUE(absl::StrContains(r.err, "the deployer at")) << r.err;
}

TEST(CliTest, LoginAndContextsKeepEachOther) {
  SecureSuite suite;
  ASSERT_TRUE(suite.Start());
  CliHarness cli(suite);
  const std::string planner = suite.process("planner").grpc_target();

  // A context of someone else's, kept through everything below.
  CliResult r = cli.Run({"context", "set", "elsewhere", "--server", "ferry.example.com:443"});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "current stays \"suite\"")) << r.out;

  // login checks the token before keeping it.
  r = cli.Run({"login", planner, "--name", "bad", "--ca", TestCerts::Get().ca(), "--token-stdin"}, {}, "ferry_000000000000_x\n");
  EXPECT_RUN(r, 1);
  r = cli.Run({"context", "list", "-o", "json"});
  EXPECT_FALSE(absl::StrContains(r.out, "\"bad\"")) << r.out;

  std::string alice = suite.CreateToken("admin");  // a second token of the admin user
  r = cli.Run({"login", planner, "--name", "mine", "--ca", TestCerts::Get().ca(), "--token-stdin"}, {}, alice + "\n");
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "as user:admin")) << r.out;
  // Login as one planner address: every service there. The suite's services
  // have their own ports, so per-service addresses come with --server.
  r = cli.Run({"context", "set", "mine", "--server",
               absl::StrCat("deployer=", suite.process("deployer").grpc_target(), ",audit=",
                            suite.process("audit").grpc_target(), ",repo-watcher=", suite.process("repo-watcher").grpc_target())});
  EXPECT_RUN(r, 0);
  r = cli.Run({"status"});
  EXPECT_RUN(r, 0);

  r = cli.Run({"context", "list"});
  EXPECT_RUN(r, 0);
  ExpectGolden("context_list.txt", r.out, suite.dir());
  std::ifstream in(cli.config_path());
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_TRUE(absl::StrContains(text.str(), "elsewhere:")) << text.str();
  EXPECT_TRUE(absl::StrContains(text.str(), "current-context: mine")) << text.str();
  EXPECT_EQ(std::filesystem::status(cli.config_path()).permissions() & std::filesystem::perms::others_read,
            std::filesystem::perms::none);

  r = cli.Run({"context", "use", "suite"});
  EXPECT_RUN(r, 0);
  r = cli.Run({"--context", "mine", "whoami"});
  EXPECT_RUN(r, 0);
  r = cli.Run({"context", "use", "nope"});
  EXPECT_RUN(r, 1);
  r = cli.Run({"context", "rm", "elsewhere"});
  EXPECT_RUN(r, 0);
  r = cli.Run({"context", "show"});
  EXPECT_RUN(r, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "context:      suite")) << r.out;

  // A broken file says which and how to fix it.
  std::ofstream(cli.dir() + "/broken.yaml") << "contexts: [1, 2\n";
  r = cli.Run({"status"}, {"FERRY_CONFIG=" + cli.dir() + "/broken.yaml"});
  EXPECT_RUN(r, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "broken.yaml")) << r.err;
}

}  // namespace
}  // namespace ferry::testing
