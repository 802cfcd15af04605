// The CheckRunner (ferry.yaml `checks:`): real commands through
// common/process, in a scratch folder holding only the plan's manifests.
#include "services/planner/check_runner.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/planner/check_gate.h"
#include "services/planner/validation.h"

namespace ferry::planner {
namespace {

constexpr char kSha[] = "0123456789abcdef0123456789abcdef01234567";

class CheckRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ferry-check-runner-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    options_.scratch_root = root_;
    options_.isolate_network = false;  // not the point here, and containers often forbid it
    options_.run_as_self = true;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  v1::Plan Plan() const {
    v1::Plan plan;
    plan.set_id("p1");
    plan.set_application_id("web");
    plan.set_environment_id("prod");
    plan.mutable_target_revision()->set_repository_id("config");
    plan.mutable_target_revision()->set_sha(kSha);
    plan.mutable_target_revision()->set_ref("refs/heads/main");
    plan.set_manifests_digest("sha256:abc");
    v1::Manifest* m = plan.add_manifests();
    m->mutable_object()->set_group("ferry.dev");
    m->mutable_object()->set_kind("ConfigFile");
    m->mutable_object()->set_name("greeting");
    m->set_json(R"({"apiVersion":"ferry.dev/v1","kind":"ConfigFile","metadata":{"name":"greeting"},)"
                R"("spec":{"path":"web/greeting.txt","content":"hello\n"}})");
    v1::Manifest* s = plan.add_manifests();
    s->mutable_object()->set_kind("Secret");
    s->mutable_object()->set_namespace_("default");
    s->mutable_object()->set_name("db/password");
    s->set_json(R"({"apiVersion":"v1","kind":"Secret","metadata":{"name":"db-password","namespace":"default"},)"
                R"("stringData":{"password":"hunter2-not-for-checks"}})");
    return plan;
  }

  static v1::CheckCommand Sh(const std::string& name, const std::string& script, int64_t timeout_seconds = 60) {
    v1::CheckCommand c;
    c.set_name(name);
    c.add_argv("/bin/sh");
    c.add_argv("-c");
    c.add_argv(script);
    c.mutable_timeout()->set_seconds(timeout_seconds);
    c.set_memory_limit_bytes(int64_t{1} << 30);
    return c;
  }

  std::string root_;
  CheckRunnerOptions options_;
  SystemClock clock_;
};

TEST_F(CheckRunnerTest, APassingCheckSeesTheRenderedManifestsAndNothingElse) {
  ::setenv("FERRY_TEST_PLANNER_ONLY", "database-url-like", 1);
  CheckRunner runner(&clock_, options_);
  absl::StatusOr<v1::CheckRun> run = runner.Run(
      Sh("policy",
         "set -e; ls manifests; cat manifests/0001-ConfigFile-greeting.json | tr -d ' \\n'; echo;"
         " cat manifests/0002-Secret-db_password.json | tr -d ' \\n'; echo;"
         " grep -q '\"sha\": \"" + std::string(kSha) + "\"' plan.json;"
         " echo \"check=$FERRY_CHECK app=$FERRY_APPLICATION env=$FERRY_ENVIRONMENT sha=$FERRY_COMMIT_SHA\";"
         " echo \"leak=${FERRY_TEST_PLANNER_ONLY:-none}\"; test \"$FERRY_MANIFESTS_DIR\" = \"$PWD/manifests\";"
         " ls -A | tr '\\n' ' '"),
      Plan());
  ::unsetenv("FERRY_TEST_PLANNER_ONLY");
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->result(), v1::CHECK_RUN_RESULT_PASSED) << run->description() << "\n" << run->output();
  EXPECT_EQ(run->description(), "exited 0");
  EXPECT_EQ(run->exit_code(), 0);
  const std::string& out = run->output();
  EXPECT_TRUE(absl::StrContains(out, "0001-ConfigFile-greeting.json\n0002-Secret-db_password.json\n")) << out;
  EXPECT_TRUE(absl::StrContains(out, R"("content":"hello\n")")) << out;
  // A Kubernetes Secret's values reach a check as digests, as the diff shows them.
  EXPECT_FALSE(absl::StrContains(out, "hunter2")) << out;
  EXPECT_TRUE(absl::StrContains(out, "check=policy app=web env=prod sha=" + std::string(kSha))) << out;
  EXPECT_TRUE(absl::StrContains(out, "leak=none")) << out;  // the planner's environment is not inherited
  EXPECT_TRUE(absl::StrContains(out, "home manifests plan.json ")) << out;  // no repository, no secrets
  EXPECT_TRUE(run->has_finish_time());
  // The scratch folder is gone.
  EXPECT_TRUE(std::filesystem::is_empty(root_));
}

TEST_F(CheckRunnerTest, AFailingCheckIsAFailedRunWithItsOutputBounded) {
  options_.max_output_bytes = 300;
  CheckRunner runner(&clock_, options_);
  absl::StatusOr<v1::CheckRun> run =
      runner.Run(Sh("policy", "echo 'deny: greeting has no owner label' >&2; yes violation | head -c 5000; exit 3"), Plan());
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->result(), v1::CHECK_RUN_RESULT_FAILED);
  EXPECT_EQ(run->description(), "exited 3");
  EXPECT_EQ(run->exit_code(), 3);
  EXPECT_TRUE(absl::StartsWith(run->output(), "deny: greeting has no owner label\n")) << run->output();
  EXPECT_EQ(run->output().size(), 300u);
  EXPECT_TRUE(run->output_truncated());
}

TEST_F(CheckRunnerTest, ACheckPastItsTimeoutIsKilledAndFails) {
  CheckRunner runner(&clock_, options_);
  const absl::Time start = absl::Now();
  absl::StatusOr<v1::CheckRun> run = runner.Run(Sh("slow", "echo started; exec sleep 600", 5), Plan());
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(60));
  EXPECT_EQ(run->result(), v1::CHECK_RUN_RESULT_FAILED);
  EXPECT_EQ(run->description(), "did not finish within 5s and was killed");
  EXPECT_EQ(run->output(), "started\n");
}

TEST_F(CheckRunnerTest, ACheckPastItsMemoryLimitFailsNamingTheLimit) {
  CheckRunner runner(&clock_, options_);
  v1::CheckCommand c;
  c.set_name("hungry");
  c.add_argv("/usr/bin/python3");
  c.add_argv("-c");
  c.add_argv("x = bytearray(512 * 1024 * 1024)");
  c.mutable_timeout()->set_seconds(60);
  c.set_memory_limit_bytes(int64_t{128} << 20);
  absl::StatusOr<v1::CheckRun> run = runner.Run(c, Plan());
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->result(), v1::CHECK_RUN_RESULT_FAILED);
  EXPECT_TRUE(absl::StrContains(run->description(), "checks.hungry.memoryLimit")) << run->description() << "\n"
                                                                                    << run->output();
}

TEST_F(CheckRunnerTest, AMissingProgramIsAFailedRunNotAnError) {
  CheckRunner runner(&clock_, options_);
  v1::CheckCommand c = Sh("policy", "");
  c.clear_argv();
  c.add_argv("/nonexistent/conftest");
  absl::StatusOr<v1::CheckRun> run = runner.Run(c, Plan());
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->result(), v1::CHECK_RUN_RESULT_FAILED);
  EXPECT_EQ(run->description(), "program /nonexistent/conftest not found");
}

TEST_F(CheckRunnerTest, OnlyTheChecksOfThePlansEnvironmentRun) {
  v1::Application app;
  *app.add_checks() = Sh("everywhere", "echo a");
  v1::CheckCommand prod_only = Sh("prod-only", "echo b");
  prod_only.add_environment_ids("prod");
  *app.add_checks() = prod_only;
  v1::CheckCommand staging_only = Sh("staging-only", "exit 1");
  staging_only.add_environment_ids("staging");
  *app.add_checks() = staging_only;
  CheckRunner runner(&clock_, options_);
  absl::StatusOr<std::vector<v1::CheckRun>> runs = runner.RunAll(app, Plan());
  ASSERT_TRUE(runs.ok()) << runs.status();
  ASSERT_EQ(runs->size(), 2u);
  EXPECT_EQ((*runs)[0].name(), "everywhere");
  EXPECT_EQ((*runs)[1].name(), "prod-only");
  EXPECT_EQ((*runs)[1].output(), "b\n");
}

TEST_F(CheckRunnerTest, WithACheckUserTheCheckRunsAsThatUserAndCanReadItsScratchFolder) {
  if (::geteuid() != 0) GTEST_SKIP() << "switching users needs root; this run is not root";
  options_.run_as_self = false;
  options_.uid = 65534;
  options_.gid = 65534;
  std::filesystem::permissions(root_, std::filesystem::perms::others_exec, std::filesystem::perm_options::add);
  CheckRunner runner(&clock_, options_);
  absl::StatusOr<v1::CheckRun> run =
      runner.Run(Sh("policy", "echo \"$(id -u):$(id -g)\"; cat manifests/*.json >/dev/null && touch written && echo ok"),
                 Plan());
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->result(), v1::CHECK_RUN_RESULT_PASSED) << run->description() << "\n" << run->output();
  EXPECT_EQ(run->output(), "65534:65534\nok\n");
}

TEST_F(CheckRunnerTest, WithoutACheckUserOrConsentToRunAsThePlannerNothingRuns) {
  options_.run_as_self = false;
  CheckRunner runner(&clock_, options_);
  absl::StatusOr<v1::CheckRun> run = runner.Run(Sh("policy", "touch ran; exit 0"), Plan());
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->result(), v1::CHECK_RUN_RESULT_FAILED);
  EXPECT_TRUE(absl::StartsWith(run->description(), "not run: this planner runs checks only as --check-user"))
      << run->description();
  EXPECT_TRUE(std::filesystem::is_empty(root_)) << "no scratch folder was made";
}

TEST_F(CheckRunnerTest, AnUnwritableScratchRootIsAnErrorAndNothingRuns) {
  options_.scratch_root = root_ + "/missing";
  CheckRunner runner(&clock_, options_);
  absl::StatusOr<v1::CheckRun> run = runner.Run(Sh("policy", "exit 0"), Plan());
  ASSERT_FALSE(run.ok());
  EXPECT_EQ(run.status().code(), absl::StatusCode::kUnavailable);
}

// The required-checks gate judges a required check by the plan's own run of
// that name, over what CI reported, and asks no source when runs cover all.
TEST(CheckGateOwnRunsTest, APlansOwnRunDecidesItsRequiredCheck) {
  v1::Environment env;
  env.add_required_checks("policy");
  v1::CommitRef target;
  target.set_repository_id("config");
  target.set_sha(kSha);
  google::protobuf::RepeatedPtrField<v1::CheckRun> runs;
  v1::CheckRun* run = runs.Add();
  run->set_name("policy");
  run->set_result(v1::CHECK_RUN_RESULT_FAILED);
  run->set_description("exited 1");
  CheckGate gate(/*source=*/nullptr, nullptr);
  absl::StatusOr<ChecksVerdict> failed = gate.Evaluate(env, target, nullptr, &runs);
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_EQ(failed->outcome, ChecksVerdict::Outcome::kFailed);
  EXPECT_EQ(failed->failed.source(), "ferry");
  EXPECT_TRUE(absl::StrContains(failed->message, "required check policy (failure: exited 1) failed")) << failed->message;
  run->set_result(v1::CHECK_RUN_RESULT_PASSED);
  absl::StatusOr<ChecksVerdict> passed = gate.Evaluate(env, target, nullptr, &runs);
  ASSERT_TRUE(passed.ok());
  EXPECT_EQ(passed->outcome, ChecksVerdict::Outcome::kPassed);
  // Without a run of that name the check is pending (no source to ask).
  runs.Clear();
  absl::StatusOr<ChecksVerdict> pending = gate.Evaluate(env, target, nullptr, &runs);
  ASSERT_TRUE(pending.ok());
  EXPECT_EQ(pending->outcome, ChecksVerdict::Outcome::kPending);
}

TEST(CheckCommandValidationTest, NamesTheBadField) {
  auto check = [](const std::function<void(v1::CheckCommand&)>& edit) {
    v1::Application app;
    app.set_id("web");
    app.add_environment_ids("prod");
    v1::CheckCommand* c = app.add_checks();
    c->set_name("policy");
    c->add_argv("/usr/bin/conftest");
    edit(*c);
    absl::Status s = ValidateCheckCommands(app);
    if (s.ok()) {
      EXPECT_EQ(app.checks(0).timeout().seconds(), 60);  // defaults filled in
      EXPECT_EQ(app.checks(0).memory_limit_bytes(), int64_t{1} << 30);
    }
    return std::string(s.message());
  };
  EXPECT_EQ(check([](v1::CheckCommand&) {}), "");
  EXPECT_EQ(check([](v1::CheckCommand& c) { c.clear_argv(); }),
            "application.checks[0].argv: the command is empty (a program and its arguments)");
  EXPECT_EQ(check([](v1::CheckCommand& c) { c.set_argv(0, "bin/conftest"); }),
            "application.checks[0].argv[0]: \"bin/conftest\" must be an absolute path or a bare program name (the "
            "check runs in a scratch folder, not the repository)");
  EXPECT_EQ(check([](v1::CheckCommand& c) { c.set_argv(0, "/usr/../bin/sh"); }),
            "application.checks[0].argv[0]: \"/usr/../bin/sh\" is not a normalised absolute path");
  EXPECT_EQ(check([](v1::CheckCommand& c) { c.mutable_timeout()->set_seconds(86400); }),
            "application.checks[0].timeout: must be whole seconds from 1s to 30m");
  EXPECT_EQ(check([](v1::CheckCommand& c) { c.set_memory_limit_bytes(1); }),
            "application.checks[0].memory_limit_bytes: 1 is outside 16 MiB to 64 GiB");
  EXPECT_EQ(check([](v1::CheckCommand& c) { c.add_environment_ids("staging"); }),
            "application.checks[0].environment_ids[0]: \"staging\" is not an environment of application \"web\"");
  EXPECT_EQ(check([](v1::CheckCommand& c) { c.set_name(""); }),
            "application.checks[0].name: a check name must be 1 to 255 bytes");
}

}  // namespace
}  // namespace ferry::planner
