// ParseWebhookPayload over the payloads GitHub, GitLab and Gitea document
// (tests/repo-watcher/testdata/webhooks, see its README), and over broken
// ones: every refusal names the JSON field.

#include "services/repo-watcher/webhook_payload.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/json/json.h"

namespace ferry::repo_watcher {
namespace {

using Kind = PullRequestChange::Kind;
using Type = WebhookEvent::Type;

std::string Testdata(const std::string& name) {
  std::ifstream in(std::string(FERRY_WEBHOOK_TESTDATA) + "/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_FALSE(ss.str().empty()) << name;
  return ss.str();
}

nlohmann::json Json(const std::string& name) { return *ParseJson(Testdata(name)); }

WebhookEvent Parse(const std::string& provider, const std::string& event, const std::string& body) {
  std::map<std::string, std::string> headers;
  if (provider == "github") headers["x-github-event"] = event;
  if (provider == "gitlab") headers["x-gitlab-event"] = event;
  if (provider == "gitea") headers["x-gitea-event-type"] = event;
  absl::StatusOr<WebhookEvent> e = ParseWebhookPayload(provider, headers, body);
  EXPECT_TRUE(e.ok()) << provider << " " << event << ": " << e.status();
  return e.ok() ? *e : WebhookEvent{};
}

absl::Status ParseError(const std::string& provider, const std::string& event, const std::string& body) {
  std::map<std::string, std::string> headers = {{"x-github-event", event}, {"x-gitlab-event", event},
                                                {"x-gitea-event-type", event}};
  return ParseWebhookPayload(provider, headers, body).status();
}

TEST(WebhookPayloadTest, GitHubsDocumentedPayloads) {
  WebhookEvent push = Parse("github", "push", Testdata("github/push.json"));
  EXPECT_EQ(push.type, Type::kPush);
  EXPECT_EQ(push.refs, std::vector<std::string>{"refs/tags/simple-tag"});
  EXPECT_EQ(Parse("github", "ping", Testdata("github/ping.json")).type, Type::kPing);

  WebhookEvent opened = Parse("github", "pull_request", Testdata("github/pull_request_opened.json"));
  ASSERT_EQ(opened.type, Type::kPullRequest);
  EXPECT_EQ(opened.pull_request.kind, Kind::kOpened);
  EXPECT_EQ(opened.pull_request.number, 2);
  EXPECT_EQ(opened.pull_request.head_ref, "refs/pull/2/head");
  EXPECT_EQ(opened.pull_request.head_sha, "ec26c3e57ca3a959ca5aad62de7213c562f8c821");
  EXPECT_EQ(opened.pull_request.base_ref, "refs/heads/master");
  EXPECT_EQ(opened.pull_request.title, "Update the README with new information.");
  EXPECT_EQ(opened.pull_request.author, "Codertocat");
  EXPECT_EQ(opened.pull_request.url, "https://github.com/Codertocat/Hello-World/pull/2");
  EXPECT_EQ(Parse("github", "pull_request", Testdata("github/pull_request_reopened.json")).pull_request.kind,
            Kind::kOpened);
  EXPECT_EQ(Parse("github", "pull_request", Testdata("github/pull_request_synchronize.json")).pull_request.kind,
            Kind::kUpdated);
  WebhookEvent closed = Parse("github", "pull_request", Testdata("github/pull_request_closed.json"));
  EXPECT_EQ(closed.pull_request.kind, Kind::kClosed);
  EXPECT_FALSE(closed.pull_request.merged);
  nlohmann::json merged = Json("github/pull_request_closed.json");
  merged["pull_request"]["merged"] = true;
  EXPECT_TRUE(Parse("github", "pull_request", DumpJsonLossy(merged)).pull_request.merged);
  nlohmann::json labeled = Json("github/pull_request_opened.json");
  labeled["action"] = "labeled";
  WebhookEvent ignored = Parse("github", "pull_request", DumpJsonLossy(labeled));
  EXPECT_EQ(ignored.type, Type::kIgnored);
  EXPECT_EQ(ignored.ignored, "action \"labeled\" ignored");

  WebhookEvent status = Parse("github", "status", Testdata("github/status.json"));
  ASSERT_EQ(status.type, Type::kCheck);
  EXPECT_EQ(status.check.sha(), "6113728f27ae82c7b1a177c8d03f9e96e0adf246");
  EXPECT_EQ(status.check.name(), "default");
  EXPECT_EQ(status.check.state(), v1::CHECK_STATE_SUCCESS);
  nlohmann::json errored = Json("github/status.json");
  errored["state"] = "error";
  EXPECT_EQ(Parse("github", "status", DumpJsonLossy(errored)).check.state(), v1::CHECK_STATE_FAILURE);

  WebhookEvent run = Parse("github", "check_run", Testdata("github/check_run_completed.json"));
  ASSERT_EQ(run.type, Type::kCheck);
  EXPECT_EQ(run.check.name(), "Octocoders-linter");
  EXPECT_EQ(run.check.sha(), "ec26c3e57ca3a959ca5aad62de7213c562f8c821");
  EXPECT_EQ(run.check.state(), v1::CHECK_STATE_SUCCESS);
  nlohmann::json running = Json("github/check_run_completed.json");
  running["check_run"]["status"] = "in_progress";
  running["check_run"]["conclusion"] = nullptr;
  EXPECT_EQ(Parse("github", "check_run", DumpJsonLossy(running)).check.state(), v1::CHECK_STATE_PENDING);
  for (const char* c : {"failure", "cancelled", "timed_out", "action_required"}) {
    nlohmann::json failed = Json("github/check_run_completed.json");
    failed["check_run"]["conclusion"] = c;
    EXPECT_EQ(Parse("github", "check_run", DumpJsonLossy(failed)).check.state(), v1::CHECK_STATE_FAILURE) << c;
  }
  for (const char* c : {"neutral", "skipped"}) {
    nlohmann::json passed = Json("github/check_run_completed.json");
    passed["check_run"]["conclusion"] = c;
    EXPECT_EQ(Parse("github", "check_run", DumpJsonLossy(passed)).check.state(), v1::CHECK_STATE_SUCCESS) << c;
  }
  EXPECT_EQ(Parse("github", "issues", "{}").type, Type::kIgnored);
}

TEST(WebhookPayloadTest, GitLabsDocumentedPayloads) {
  WebhookEvent push = Parse("gitlab", "Push Hook", Testdata("gitlab/push.json"));
  EXPECT_EQ(push.refs, std::vector<std::string>{"refs/heads/master"});

  WebhookEvent mr = Parse("gitlab", "Merge Request Hook", Testdata("gitlab/merge_request.json"));
  ASSERT_EQ(mr.type, Type::kPullRequest);
  EXPECT_EQ(mr.pull_request.kind, Kind::kOpened);
  EXPECT_EQ(mr.pull_request.number, 1);
  EXPECT_EQ(mr.pull_request.head_ref, "refs/merge-requests/1/head");
  EXPECT_EQ(mr.pull_request.head_sha, "da1560886d4f094c3e6c9ef40349f7d38b5d27d7");
  EXPECT_EQ(mr.pull_request.base_ref, "refs/heads/master");
  EXPECT_EQ(mr.pull_request.author, "user1");
  for (auto [action, kind] : std::vector<std::pair<std::string, Kind>>{
           {"reopen", Kind::kOpened}, {"update", Kind::kUpdated}, {"close", Kind::kClosed}, {"merge", Kind::kClosed}}) {
    nlohmann::json j = Json("gitlab/merge_request.json");
    j["object_attributes"]["action"] = action;
    WebhookEvent e = Parse("gitlab", "Merge Request Hook", DumpJsonLossy(j));
    EXPECT_EQ(e.pull_request.kind, kind) << action;
    EXPECT_EQ(e.pull_request.merged, action == "merge") << action;
  }
  nlohmann::json approved = Json("gitlab/merge_request.json");
  approved["object_attributes"]["action"] = "approved";
  EXPECT_EQ(Parse("gitlab", "Merge Request Hook", DumpJsonLossy(approved)).type, Type::kIgnored);

  WebhookEvent pipeline = Parse("gitlab", "Pipeline Hook", Testdata("gitlab/pipeline.json"));
  ASSERT_EQ(pipeline.type, Type::kCheck);
  EXPECT_EQ(pipeline.check.name(), "pipeline");
  EXPECT_EQ(pipeline.check.sha(), "bcbb5ec396a2c0f828686f14fac9b80b780504f2");
  EXPECT_EQ(pipeline.check.state(), v1::CHECK_STATE_SUCCESS);
  EXPECT_EQ(pipeline.check.url(), "http://192.168.64.1:3005/gitlab-org/gitlab-test/-/pipelines/31");
  nlohmann::json running = Json("gitlab/pipeline.json");
  running["object_attributes"]["status"] = "running";
  EXPECT_EQ(Parse("gitlab", "Pipeline Hook", DumpJsonLossy(running)).check.state(), v1::CHECK_STATE_PENDING);

  WebhookEvent job = Parse("gitlab", "Job Hook", Testdata("gitlab/job.json"));
  ASSERT_EQ(job.type, Type::kCheck);
  EXPECT_EQ(job.check.name(), "auto_deploy:start");
  EXPECT_EQ(job.check.sha(), "95d49d1efbd941908580e79d65e4b5ecaf4a8305");
  EXPECT_EQ(job.check.state(), v1::CHECK_STATE_SUCCESS);
  EXPECT_EQ(job.check.url(), "https://gitlab.com/jsmithy2/release-tools-fake/-/jobs/3580121225");
  nlohmann::json failed = Json("gitlab/job.json");
  failed["build_status"] = "failed";
  EXPECT_EQ(Parse("gitlab", "Job Hook", DumpJsonLossy(failed)).check.state(), v1::CHECK_STATE_FAILURE);
  failed["build_allow_failure"] = true;
  EXPECT_EQ(Parse("gitlab", "Job Hook", DumpJsonLossy(failed)).check.state(), v1::CHECK_STATE_SUCCESS)
      << "an allowed failure does not fail the pipeline";
}

TEST(WebhookPayloadTest, GiteasRecordedPayloads) {
  WebhookEvent push = Parse("gitea", "push", Testdata("gitea/push.json"));
  EXPECT_EQ(push.refs, std::vector<std::string>{"refs/heads/main"});
  WebhookEvent sync = Parse("gitea", "pull_request_sync", Testdata("gitea/pull_request_synchronized.json"));
  ASSERT_EQ(sync.type, Type::kPullRequest);
  EXPECT_EQ(sync.pull_request.kind, Kind::kUpdated);
  EXPECT_EQ(sync.pull_request.number, 2);
  EXPECT_EQ(sync.pull_request.head_ref, "refs/pull/2/head");
  EXPECT_EQ(sync.pull_request.head_sha, "788ed8d02d3b7fcfcf6386dbcbca696aa1d4dc25");
  EXPECT_EQ(sync.pull_request.base_ref, "refs/heads/main");
  // Older Gitea sends only X-Gitea-Event.
  absl::StatusOr<WebhookEvent> old =
      ParseWebhookPayload("gitea", {{"x-gitea-event", "pull_request"}}, Testdata("gitea/pull_request_synchronized.json"));
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->pull_request.kind, Kind::kUpdated);
  WebhookEvent status = Parse("gitea", "status", Testdata("gitea/status.json"));
  ASSERT_EQ(status.type, Type::kCheck);
  EXPECT_EQ(status.check.name(), "ci/woodpecker/pr/build");
  EXPECT_EQ(status.check.state(), v1::CHECK_STATE_SUCCESS);
  EXPECT_EQ(status.check.url(), "http://127.0.0.1:8000/repos/2/pipeline/7");
  nlohmann::json warning = Json("gitea/status.json");
  warning["state"] = "warning";
  EXPECT_EQ(Parse("gitea", "status", DumpJsonLossy(warning)).check.state(), v1::CHECK_STATE_SUCCESS);
}

TEST(WebhookPayloadTest, GenericNamesRefsOrNone) {
  EXPECT_TRUE(Parse("generic", "", "").refs.empty()) << "no body: check every ref";
  EXPECT_EQ(Parse("generic", "", R"({"ref":"refs/heads/main","pushed_at":"x"})").refs,
            std::vector<std::string>{"refs/heads/main"});
  EXPECT_EQ(Parse("generic", "", R"({"refs":["refs/heads/a","refs/tags/v1"]})").refs.size(), 2u);
  EXPECT_TRUE(Parse("generic", "", R"({"repository":"x"})").refs.empty());
}

TEST(WebhookPayloadTest, BadBodiesAreRefusedNamingTheField) {
  struct Case {
    std::string provider, event;
    std::function<std::string()> body;
    std::string field;
  };
  auto edit = [](const std::string& file, std::function<void(nlohmann::json&)> f) {
    return [file, f] {
      nlohmann::json j = Json(file);
      f(j);
      return DumpJsonLossy(j);
    };
  };
  const std::vector<Case> cases = {
      {"github", "push", [] { return std::string("payload=%7B%7D"); }, "body: "},
      {"github", "push", [] { return std::string("[1,2]"); }, "body: "},
      {"github", "push", [] { return std::string(200, '[') + std::string(200, ']'); }, "body: "},
      {"github", "push", edit("github/push.json", [](auto& j) { j.erase("ref"); }), "ref: "},
      {"github", "push", edit("github/push.json", [](auto& j) { j["ref"] = 7; }), "ref: "},
      {"github", "push", edit("github/push.json", [](auto& j) { j["ref"] = "main"; }), "ref: "},
      {"github", "pull_request",
       edit("github/pull_request_opened.json", [](auto& j) { j["pull_request"]["head"]["sha"] = "abc"; }),
       "pull_request.head.sha: "},
      {"github", "pull_request", edit("github/pull_request_opened.json", [](auto& j) { j["number"] = -4; }),
       "number: "},
      {"github", "pull_request", edit("github/pull_request_opened.json", [](auto& j) { j["pull_request"]["base"] = 1; }),
       "pull_request.base: "},
      {"github", "pull_request",
       edit("github/pull_request_opened.json", [](auto& j) { j["pull_request"]["base"].erase("ref"); }),
       "pull_request.base.ref: "},
      {"github", "status", edit("github/status.json", [](auto& j) { j["state"] = "great"; }), "state: "},
      {"github", "status", edit("github/status.json", [](auto& j) { j["context"] = ""; }), "context: "},
      {"github", "status", edit("github/status.json", [](auto& j) { j["context"] = std::string(300, 'c'); }),
       "context: "},
      {"github", "check_run",
       edit("github/check_run_completed.json", [](auto& j) { j["check_run"]["conclusion"] = "meh"; }),
       "check_run.conclusion: "},
      {"github", "check_run",
       edit("github/check_run_completed.json", [](auto& j) { j["check_run"].erase("head_sha"); }),
       "check_run.head_sha: "},
      {"gitlab", "Merge Request Hook",
       edit("gitlab/merge_request.json", [](auto& j) { j["object_attributes"].erase("iid"); }),
       "object_attributes.iid: "},
      {"gitlab", "Merge Request Hook",
       edit("gitlab/merge_request.json", [](auto& j) { j["object_attributes"]["last_commit"]["id"] = "zz"; }),
       "object_attributes.last_commit.id: "},
      {"gitlab", "Pipeline Hook",
       edit("gitlab/pipeline.json", [](auto& j) { j["object_attributes"].erase("sha"); }), "object_attributes.sha: "},
      {"gitlab", "Job Hook", edit("gitlab/job.json", [](auto& j) { j.erase("build_name"); }), "build_name: "},
      {"gitea", "pull_request",
       edit("gitea/pull_request_synchronized.json", [](auto& j) { j["number"] = "2"; }), "number: "},
      {"gitea", "status", edit("gitea/status.json", [](auto& j) { j["sha"] = nullptr; }), "sha: "},
      {"generic", "", [] { return std::string(R"({"refs":"refs/heads/main"})"); }, "refs: "},
      {"generic", "", [] { return std::string(R"({"refs":["refs/heads/a b"]})"); }, "refs[0]: "},
  };
  for (const Case& c : cases) {
    absl::Status s = ParseError(c.provider, c.event, c.body());
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << c.field << " " << s;
    EXPECT_EQ(s.message().rfind(c.field, 0), 0u) << "want " << c.field << ", got " << s;
  }
}

}  // namespace
}  // namespace ferry::repo_watcher
