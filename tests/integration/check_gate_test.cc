// Required checks (#20) through the real binaries (audit, repo-watcher,
// planner; no deployer: plans are diffed against nothing and stay released):
// a plan waits for the checks an environment requires, reported to the real
// repo-watcher (ReportCheck), is released the moment they pass (the planner
// follows WatchReviewEvents; its periodic hold pass is an hour away here),
// fails when one fails, and each decision reaches the audit log naming the
// check and its URL. Also the planner's GrpcCheckSource against the real
// repo-watcher.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/crypto/sha256.h"
#include "common/json/json.h"
#include "ferry/v1/audit.grpc.pb.h"
#include "ferry/v1/planner.grpc.pb.h"
#include "ferry/v1/repo_watcher.grpc.pb.h"
#include "services/planner/grpc_check_source.h"
#include "tests/repo-watcher/git_test_repo.h"
#include "tests/support/plain_suite.h"
#include "tests/support/service_process.h"
#include "tests/support/test_database.h"

namespace ferry {
namespace {

using testing::ServiceProcess;

constexpr char kTestUrl[] = "https://ci.example.com/runs/101";
constexpr char kLintUrl[] = "https://ci.example.com/runs/102";

std::string Greeting(const std::string& text) {
  return absl::StrCat("apiVersion: ferry.dev/v1\nkind: ConfigFile\nmetadata:\n  name: greeting\nspec:\n",
                      "  path: web/greeting.txt\n  content: \"", text, "\\n\"\n");
}

bool WaitFor(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(60)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return true;
}

class CheckGateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("ferry-checkgate");
    root_ = dir_ + "/env-local";
    std::filesystem::create_directories(root_);
    repo_ = std::make_unique<testing::GitTestRepo>(dir_ + "/git");
  }

  void StartServices() {
    testing::PlainSuiteFlags flags;
    flags.start_deployer = false;
    if (webhook_port_ != 0) {
      flags.repo_watcher = {absl::StrCat("--webhook-address=127.0.0.1:", webhook_port_), "--secrets-dir=" + dir_};
    }
    // Held plans are re-evaluated on a timer only once an hour: what
    // releases or fails them below is the review event stream.
    flags.planner = {"--hold-check-interval=1h"};
    flags.planner.insert(flags.planner.end(), planner_extra_.begin(), planner_extra_.end());
    ASSERT_TRUE(testing::StartPlainServices(db_.url(), dir_, flags, &services_));
    watcher_channel_ = testing::PlainChannel(*services_.repo_watcher);
    rw_ = v1::RepoWatcher::NewStub(watcher_channel_);
    pl_ = v1::Planner::NewStub(testing::PlainChannel(*services_.planner));
    au_ = v1::Audit::NewStub(testing::PlainChannel(*services_.audit));
  }

  void CreateRepository() {
    grpc::ClientContext ctx;
    v1::CreateRepositoryRequest req;
    req.mutable_repository()->set_id("config");
    req.mutable_repository()->set_url(repo_->remote_path());
    req.mutable_repository()->mutable_poll_interval()->set_seconds(1);
    if (webhook_port_ != 0) req.mutable_repository()->mutable_webhook_secret()->set_file(dir_ + "/webhook-secret");
    v1::Repository out;
    grpc::Status s = rw_->CreateRepository(&ctx, req, &out);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  void Refresh() {
    grpc::ClientContext ctx;
    v1::RefreshRepositoryRequest req;
    req.set_repository_id("config");
    req.set_wait(true);
    v1::RefreshRepositoryResponse out;
    grpc::Status s = rw_->RefreshRepository(&ctx, req, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
  }

  grpc::Status Apply() {
    grpc::ClientContext ctx;
    v1::ApplyDeclarativeConfigRequest req;
    req.mutable_source()->set_repository_id("config");
    req.mutable_source()->set_ref("main");
    v1::ApplyDeclarativeConfigResponse out;
    return pl_->ApplyDeclarativeConfig(&ctx, req, &out);
  }

  grpc::Status ReportCheck(const std::string& sha, const std::string& name, v1::CheckState state,
                           const std::string& url) {
    grpc::ClientContext ctx;
    v1::ReportCheckRequest req;
    req.set_repository_id("config");
    req.set_sha(sha);
    req.set_name(name);
    req.set_state(state);
    req.set_url(url);
    v1::CommitCheck out;
    return rw_->ReportCheck(&ctx, req, &out);
  }

  // The newest plan of web for `sha`; an empty plan when there is none.
  v1::Plan PlanFor(const std::string& sha) {
    grpc::ClientContext ctx;
    v1::ListPlansRequest req;
    req.set_application_id("web");
    req.set_view(v1::PLAN_VIEW_BASIC);
    req.set_page_size(1000);
    v1::ListPlansResponse out;
    EXPECT_TRUE(pl_->ListPlans(&ctx, req, &out).ok());
    for (const v1::Plan& p : out.plans())
      if (p.target_revision().sha() == sha) return p;
    return v1::Plan();
  }

  std::vector<v1::Event> Audited(v1::AuditAction action) {
    grpc::ClientContext ctx;
    v1::QueryRequest req;
    req.mutable_filter()->add_actions(action);
    req.set_page_size(1000);
    v1::QueryResponse out;
    if (!au_->Query(&ctx, req, &out).ok()) return {};
    return {out.events().begin(), out.events().end()};
  }

  // Whether the newest plan for `sha` is released: approved and no longer held.
  bool Released(const std::string& sha) {
    v1::Plan p = PlanFor(sha);
    return p.state() == v1::PLAN_STATE_APPROVED && p.hold_reason() == v1::HOLD_REASON_UNSPECIFIED;
  }

  std::string Yaml() const {
    return absl::StrCat("environments:\n  local:\n    host: {rootDir: ", root_,
                        "}\n    approval: auto\n    requiredChecks: [ci/test, lint]\n",
                        "applications:\n  web:\n    path: apps/web\n    environments: [local]\n",
                        "    sync: {automated: true}\n    healthTimeout: 10s\n");
  }

  // POSTs GitHub's documented status event (tests/repo-watcher/testdata)
  // for check `context` of `sha`, signed with the repository's secret.
  int PostGitHubStatus(const std::string& sha, const std::string& context, const std::string& state,
                       const std::string& url) {
    std::ifstream in(std::string(FERRY_SOURCE_DIR) + "/tests/repo-watcher/testdata/webhooks/github/status.json");
    std::string text((std::istreambuf_iterator<char>(in)), {});
    absl::StatusOr<nlohmann::json> payload = ParseJson(text);
    EXPECT_TRUE(payload.ok()) << payload.status();
    if (!payload.ok()) return 0;
    (*payload)["sha"] = sha;
    (*payload)["commit"]["sha"] = sha;
    (*payload)["context"] = context;
    (*payload)["state"] = state;
    (*payload)["target_url"] = url;
    const std::string body = DumpJsonLossy(*payload);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), kWebhookSecret, static_cast<int>(std::string(kWebhookSecret).size()),
         reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &mac_len);
    httplib::Client hook("127.0.0.1", webhook_port_);
    hook.set_read_timeout(30, 0);
    httplib::Headers headers = {{"X-GitHub-Event", "status"},
                                {"X-Hub-Signature-256", "sha256=" + HexEncode(std::string(
                                                                        reinterpret_cast<char*>(mac), mac_len))},
                                {"X-GitHub-Delivery", "d-" + context + state}};
    httplib::Result res = hook.Post("/webhooks/github/config", headers, body, "application/json");
    EXPECT_TRUE(res);
    return res ? res->status : 0;
  }

  static constexpr char kWebhookSecret[] = "check-gate-hook";
  int webhook_port_ = 0;
  std::vector<std::string> planner_extra_;
  testing::TestDatabase db_;
  std::string dir_, root_;
  std::unique_ptr<testing::GitTestRepo> repo_;
  testing::PlainServices services_;
  std::shared_ptr<grpc::Channel> watcher_channel_;
  std::unique_ptr<v1::RepoWatcher::Stub> rw_;
  std::unique_ptr<v1::Planner::Stub> pl_;
  std::unique_ptr<v1::Audit::Stub> au_;
};

TEST_F(CheckGateTest, APlanWaitsForChecksReportedByApiIsReleasedWhenTheyPassAndFailsWhenOneFails) {
  const std::string c1 = repo_->Commit({{"ferry.yaml", Yaml()}, {"apps/web/deploy.yaml", Greeting("hello")}}, "one");
  repo_->Push("main");
  StartServices();
  CreateRepository();
  Refresh();
  grpc::Status applied = Apply();
  ASSERT_TRUE(applied.ok()) << applied.error_message() << services_.planner->Log();

  // Held: neither check was reported.
  ASSERT_TRUE(WaitFor([&] { return PlanFor(c1).hold_reason() == v1::HOLD_REASON_CHECKS_PENDING; }))
      << PlanFor(c1).DebugString() << services_.planner->Log();
  v1::Plan plan = PlanFor(c1);
  EXPECT_TRUE(absl::StrContains(plan.hold_message(), "ci/test (not reported)")) << plan.hold_message();
  EXPECT_TRUE(absl::StrContains(plan.hold_message(), "lint (not reported)")) << plan.hold_message();

  // One passes: still held, naming the other.
  grpc::Status s = ReportCheck(c1, "ci/test", v1::CHECK_STATE_SUCCESS, kTestUrl);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_TRUE(WaitFor([&] { return !absl::StrContains(PlanFor(c1).hold_message(), "ci/test"); }))
      << PlanFor(c1).hold_message();
  EXPECT_EQ(PlanFor(c1).hold_reason(), v1::HOLD_REASON_CHECKS_PENDING);
  EXPECT_EQ(PlanFor(c1).state(), v1::PLAN_STATE_APPROVED) << "approved (auto), held";

  // Both passed: released at once (not by the hourly pass).
  s = ReportCheck(c1, "lint", v1::CHECK_STATE_SUCCESS, kLintUrl);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const absl::Time reported = absl::Now();
  ASSERT_TRUE(WaitFor([&] { return Released(c1); })) << PlanFor(c1).DebugString() << services_.planner->Log();
  const absl::Duration release_latency = absl::Now() - reported;
  EXPECT_LT(release_latency, absl::Seconds(10));
  std::cout << "released " << absl::FormatDuration(release_latency) << " after the last ReportCheck\n";

  // A second commit whose test fails: its plan fails, naming the check and URL.
  const std::string c2 = repo_->Commit({{"apps/web/deploy.yaml", Greeting("two")}}, "two");
  repo_->Push("main");
  Refresh();
  ASSERT_TRUE(WaitFor([&] { return PlanFor(c2).hold_reason() == v1::HOLD_REASON_CHECKS_PENDING; }))
      << PlanFor(c2).DebugString() << services_.planner->Log();
  s = ReportCheck(c2, "ci/test", v1::CHECK_STATE_FAILURE, kTestUrl);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_TRUE(WaitFor([&] { return PlanFor(c2).state() == v1::PLAN_STATE_FAILED; })) << PlanFor(c2).DebugString();
  const std::string failed_id = PlanFor(c2).id();
  EXPECT_TRUE(absl::StrContains(PlanFor(c2).failure().message(), std::string("ci/test (failure, ") + kTestUrl))
      << PlanFor(c2).failure().message();

  // The check is re-run and passes: the failed plan stays failed; a refresh
  // plans the commit again and that plan is released.
  ASSERT_TRUE(ReportCheck(c2, "ci/test", v1::CHECK_STATE_SUCCESS, kTestUrl).ok());
  ASSERT_TRUE(ReportCheck(c2, "lint", v1::CHECK_STATE_SUCCESS, kLintUrl).ok());
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ(PlanFor(c2).id(), failed_id);
  EXPECT_EQ(PlanFor(c2).state(), v1::PLAN_STATE_FAILED);
  {
    grpc::ClientContext ctx;
    v1::RefreshApplicationRequest req;
    req.set_application_id("web");
    v1::RefreshApplicationResponse out;
    grpc::Status r = pl_->RefreshApplication(&ctx, req, &out);
    ASSERT_TRUE(r.ok()) << r.error_message();
    ASSERT_EQ(out.plans_size(), 1);
    EXPECT_NE(out.plans(0).id(), failed_id);
  }
  ASSERT_TRUE(WaitFor([&] { return Released(c2); })) << PlanFor(c2).DebugString() << services_.planner->Log();

  // Audited each time, naming the checks and their URLs.
  ASSERT_TRUE(WaitFor([&] { return !Audited(v1::AUDIT_ACTION_PLAN_FAILED_BY_CHECK).empty(); }));
  std::vector<v1::Event> failed = Audited(v1::AUDIT_ACTION_PLAN_FAILED_BY_CHECK);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].subject().plan_id(), failed_id);
  EXPECT_EQ(failed[0].details().fields().at("check").string_value(), "ci/test");
  EXPECT_EQ(failed[0].details().fields().at("url").string_value(), kTestUrl);
  ASSERT_TRUE(WaitFor([&] { return Audited(v1::AUDIT_ACTION_PLAN_CHECKS_PASSED).size() >= 2; }));
  std::vector<v1::Event> passed = Audited(v1::AUDIT_ACTION_PLAN_CHECKS_PASSED);
  EXPECT_EQ(passed.size(), 2u) << "the first plan and the refreshed one";
  EXPECT_TRUE(absl::StrContains(passed[0].message(), kTestUrl)) << passed[0].message();
  EXPECT_TRUE(absl::StrContains(passed[0].message(), kLintUrl)) << passed[0].message();
  std::vector<v1::Event> held = Audited(v1::AUDIT_ACTION_PLAN_HELD_BY_CHECKS);
  EXPECT_GE(held.size(), 3u) << "c1 held on both, then on lint; c2 held";
  for (const v1::Event& e : held) EXPECT_EQ(e.subject().repository_id(), "config");
}

TEST_F(CheckGateTest, GitHubStatusWebhooksReleaseAPlanOnSuccessAndFailItOnFailure) {
  webhook_port_ = testing::FreePort();
  std::ofstream(dir_ + "/webhook-secret") << kWebhookSecret << "\n";
  const std::string c1 = repo_->Commit({{"ferry.yaml", Yaml()}, {"apps/web/deploy.yaml", Greeting("hello")}}, "one");
  repo_->Push("main");
  StartServices();
  CreateRepository();
  Refresh();
  grpc::Status applied = Apply();
  ASSERT_TRUE(applied.ok()) << applied.error_message() << services_.planner->Log();
  ASSERT_TRUE(WaitFor([&] { return PlanFor(c1).hold_reason() == v1::HOLD_REASON_CHECKS_PENDING; }))
      << PlanFor(c1).DebugString() << services_.planner->Log();

  ASSERT_EQ(PostGitHubStatus(c1, "ci/test", "pending", kTestUrl), 200) << services_.repo_watcher->Log();
  ASSERT_TRUE(WaitFor([&] {
    return absl::StrContains(PlanFor(c1).hold_message(), std::string("ci/test (pending, ") + kTestUrl);
  })) << PlanFor(c1).hold_message();
  ASSERT_EQ(PostGitHubStatus(c1, "ci/test", "success", kTestUrl), 200);
  ASSERT_EQ(PostGitHubStatus(c1, "lint", "success", kLintUrl), 200);
  ASSERT_TRUE(WaitFor([&] { return Released(c1); })) << PlanFor(c1).DebugString() << services_.planner->Log();

  const std::string c2 = repo_->Commit({{"apps/web/deploy.yaml", Greeting("two")}}, "two");
  repo_->Push("main");
  Refresh();
  ASSERT_TRUE(WaitFor([&] { return PlanFor(c2).hold_reason() == v1::HOLD_REASON_CHECKS_PENDING; }))
      << PlanFor(c2).DebugString();
  ASSERT_EQ(PostGitHubStatus(c2, "lint", "error", kLintUrl), 200);
  ASSERT_TRUE(WaitFor([&] { return PlanFor(c2).state() == v1::PLAN_STATE_FAILED; })) << PlanFor(c2).DebugString();
  EXPECT_TRUE(absl::StrContains(PlanFor(c2).failure().message(), std::string("lint (failure")))
      << PlanFor(c2).failure().message();
  EXPECT_TRUE(absl::StrContains(PlanFor(c2).failure().message(), kLintUrl)) << PlanFor(c2).failure().message();

  ASSERT_TRUE(WaitFor([&] { return !Audited(v1::AUDIT_ACTION_PLAN_FAILED_BY_CHECK).empty(); }));
  std::vector<v1::Event> failed = Audited(v1::AUDIT_ACTION_PLAN_FAILED_BY_CHECK);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].details().fields().at("check").string_value(), "lint");
  EXPECT_EQ(failed[0].details().fields().at("url").string_value(), kLintUrl);
  const auto& checks = failed[0].details().fields().at("checks").list_value().values();
  bool from_github = false;
  for (const auto& c : checks) {
    auto src = c.struct_value().fields().find("source");
    if (src != c.struct_value().fields().end() && src->second.string_value() == "github") from_github = true;
  }
  EXPECT_TRUE(from_github) << "the audit event names where the result came from";
  ASSERT_TRUE(WaitFor([&] { return !Audited(v1::AUDIT_ACTION_PLAN_CHECKS_PASSED).empty(); }));
  EXPECT_TRUE(absl::StrContains(Audited(v1::AUDIT_ACTION_PLAN_CHECKS_PASSED)[0].message(), kTestUrl));
}

// ferry.yaml `checks:` (docs/checks.md): Ferry runs a policy check over
// each plan's rendered manifests itself; the environment requires it, so a
// plan whose check passes is released and one whose check fails is failed,
// with the check's output on the plan (GetPlan, `ferry plan show`) and every
// run and decision audited naming the check.
TEST_F(CheckGateTest, AFerryRunCheckThatPassesReleasesThePlanAndOneThatFailsFailsItWithItsOutput) {
  const std::string scratch = dir_ + "/check-scratch";
  std::filesystem::create_directories(scratch);
  planner_extra_ = {"--check-scratch-dir=" + scratch, "--checks-as-planner-user"};
  const std::string yaml = absl::StrCat(
      "environments:\n  local:\n    host: {rootDir: ", root_,
      "}\n    approval: auto\n    requiredChecks: [policy]\n",
      "applications:\n  web:\n    path: apps/web\n    environments: [local]\n",
      "    sync: {automated: true}\n    healthTimeout: 10s\n",
      "checks:\n  policy:\n    command: [/bin/sh, -c]\n    args:\n",
      "    - |\n",
      "      test -f plan.json || exit 9\n",
      "      if grep -l forbidden manifests/*.json; then echo \"deny: greeting says forbidden\"; exit 1; fi\n",
      "      echo \"ok: $(ls manifests | wc -l) manifests of $FERRY_APPLICATION checked\"\n",
      "    timeout: 60s\n    memoryLimit: 512Mi\n");
  const std::string c1 = repo_->Commit({{"ferry.yaml", yaml}, {"apps/web/deploy.yaml", Greeting("hello")}}, "one");
  repo_->Push("main");
  StartServices();
  CreateRepository();
  Refresh();
  grpc::Status applied = Apply();
  ASSERT_TRUE(applied.ok()) << applied.error_message() << services_.planner->Log();

  // The check passes: the plan is released, no CI report needed.
  ASSERT_TRUE(WaitFor([&] { return Released(c1); })) << PlanFor(c1).DebugString() << services_.planner->Log();
  auto get_plan = [&](const std::string& id) {
    grpc::ClientContext ctx;
    v1::GetPlanRequest req;
    req.set_plan_id(id);
    v1::Plan out;
    grpc::Status st = pl_->GetPlan(&ctx, req, &out);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return out;
  };
  v1::Plan passed_plan = get_plan(PlanFor(c1).id());
  ASSERT_EQ(passed_plan.check_runs_size(), 1) << passed_plan.DebugString();
  EXPECT_EQ(passed_plan.check_runs(0).name(), "policy");
  EXPECT_EQ(passed_plan.check_runs(0).result(), v1::CHECK_RUN_RESULT_PASSED);
  EXPECT_EQ(passed_plan.check_runs(0).output(), "ok: 1 manifests of web checked\n");

  // A commit the policy denies: its plan fails, naming the check, with the
  // check's output attached.
  const std::string c2 = repo_->Commit({{"apps/web/deploy.yaml", Greeting("forbidden")}}, "two");
  repo_->Push("main");
  Refresh();
  ASSERT_TRUE(WaitFor([&] { return PlanFor(c2).state() == v1::PLAN_STATE_FAILED; }))
      << PlanFor(c2).DebugString() << services_.planner->Log();
  const std::string failed_id = PlanFor(c2).id();
  v1::Plan failed_plan = get_plan(failed_id);
  EXPECT_TRUE(absl::StrContains(failed_plan.failure().message(), "required check policy (failure: exited 1)"))
      << failed_plan.failure().message();
  ASSERT_EQ(failed_plan.check_runs_size(), 1);
  EXPECT_EQ(failed_plan.check_runs(0).result(), v1::CHECK_RUN_RESULT_FAILED);
  EXPECT_EQ(failed_plan.check_runs(0).exit_code(), 1);
  EXPECT_TRUE(absl::StrContains(failed_plan.check_runs(0).output(), "deny: greeting says forbidden"))
      << failed_plan.check_runs(0).output();
  EXPECT_TRUE(std::filesystem::is_empty(scratch)) << "scratch folders are removed";

  // The CLI shows it.
  testing::CommandResult shown =
      testing::RunCommand({testing::BinaryPath("ferry"), "--server", "planner=" + services_.planner->grpc_target(), "--insecure",
                           "plan", "show", failed_id},
                          absl::Seconds(60), {"HOME=" + dir_, "NO_COLOR=1"});
  EXPECT_EQ(shown.exit_code, 0) << shown.output;
  EXPECT_TRUE(absl::StrContains(shown.output, "policy  FAILED (exited 1, ")) << shown.output;
  EXPECT_TRUE(absl::StrContains(shown.output, "| deny: greeting says forbidden")) << shown.output;

  // Audited: both runs, the release and the failure, naming the check.
  ASSERT_TRUE(WaitFor([&] { return Audited(v1::AUDIT_ACTION_PLAN_CHECK_RAN).size() >= 2; }));
  std::vector<v1::Event> ran = Audited(v1::AUDIT_ACTION_PLAN_CHECK_RAN);
  ASSERT_EQ(ran.size(), 2u);
  std::map<std::string, std::string> result_by_plan;
  for (const v1::Event& e : ran) {
    EXPECT_EQ(e.details().fields().at("check").string_value(), "policy");
    result_by_plan[e.subject().plan_id()] = e.details().fields().at("result").string_value();
  }
  EXPECT_EQ(result_by_plan[passed_plan.id()], "passed");
  EXPECT_EQ(result_by_plan[failed_id], "failed");
  for (const v1::Event& e : ran) {
    if (e.subject().plan_id() == failed_id) {
      EXPECT_TRUE(absl::StrContains(e.details().fields().at("output").string_value(), "deny: greeting says forbidden"));
    }
  }
  ASSERT_TRUE(WaitFor([&] { return !Audited(v1::AUDIT_ACTION_PLAN_FAILED_BY_CHECK).empty(); }));
  std::vector<v1::Event> failed = Audited(v1::AUDIT_ACTION_PLAN_FAILED_BY_CHECK);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].subject().plan_id(), failed_id);
  EXPECT_EQ(failed[0].details().fields().at("check").string_value(), "policy");
  ASSERT_TRUE(WaitFor([&] { return !Audited(v1::AUDIT_ACTION_PLAN_CHECKS_PASSED).empty(); }));
  std::vector<v1::Event> released = Audited(v1::AUDIT_ACTION_PLAN_CHECKS_PASSED);
  ASSERT_EQ(released.size(), 1u);
  EXPECT_EQ(released[0].subject().plan_id(), passed_plan.id());
  EXPECT_TRUE(absl::StrContains(released[0].message(), "policy (success: exited 0)")) << released[0].message();
}

TEST_F(CheckGateTest, GrpcCheckSourceReadsChecksAndFollowsReviewEventsOfTheRealRepoWatcher) {
  const std::string c1 = repo_->Commit({{"apps/web/deploy.yaml", Greeting("hello")}}, "one");
  repo_->Push("main");
  StartServices();
  CreateRepository();
  Refresh();
  planner::GrpcCheckSource source(watcher_channel_);
  absl::StatusOr<std::vector<v1::CommitCheck>> none = source.ListChecks("config", c1);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());

  ASSERT_TRUE(ReportCheck(c1, "lint", v1::CHECK_STATE_PENDING, kLintUrl).ok());
  ASSERT_TRUE(ReportCheck(c1, "ci/test", v1::CHECK_STATE_FAILURE, kTestUrl).ok());
  ASSERT_TRUE(ReportCheck(c1, "lint", v1::CHECK_STATE_SUCCESS, kLintUrl).ok());
  absl::StatusOr<std::vector<v1::CommitCheck>> checks = source.ListChecks("config", c1);
  ASSERT_TRUE(checks.ok()) << checks.status();
  ASSERT_EQ(checks->size(), 2u) << "the latest per name";
  EXPECT_EQ((*checks)[0].name(), "ci/test");
  EXPECT_EQ((*checks)[0].state(), v1::CHECK_STATE_FAILURE);
  EXPECT_EQ((*checks)[0].url(), kTestUrl);
  EXPECT_EQ((*checks)[1].name(), "lint");
  EXPECT_EQ((*checks)[1].state(), v1::CHECK_STATE_SUCCESS);

  // The stream from the start: three check events in order; resumed after
  // the second, only the third.
  std::unique_ptr<planner::ReviewEventStream> stream = source.WatchReviewEvents("");
  std::vector<v1::WatchReviewEventsResponse> events;
  v1::WatchReviewEventsResponse e;
  while (events.size() < 3 && stream->Next(&e)) {
    if (e.has_check()) events.push_back(e);
  }
  stream->Cancel();
  (void)stream->Finish();  // cancelled by us
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].check().name(), "lint");
  EXPECT_EQ(events[1].check().name(), "ci/test");
  EXPECT_EQ(events[2].check().state(), v1::CHECK_STATE_SUCCESS);
  std::unique_ptr<planner::ReviewEventStream> resumed = source.WatchReviewEvents(events[1].cursor());
  ASSERT_TRUE(resumed->Next(&e));
  EXPECT_EQ(e.cursor(), events[2].cursor());
  resumed->Cancel();
  (void)resumed->Finish();  // cancelled by us

  absl::StatusOr<std::vector<v1::CommitCheck>> other = source.ListChecks("config", std::string(40, 'a'));
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_TRUE(other->empty()) << "checks belong to their commit";
}

}  // namespace
}  // namespace ferry
