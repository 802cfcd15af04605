// The review side of ferry-repo-watcher (#20) as a real process against a
// real PostgreSQL and real Git repositories: webhook payloads as GitHub,
// GitLab and Gitea document them (tests/repo-watcher/testdata/webhooks),
// signed as each host signs them, with their commit ids, refs and numbers
// replaced by those of the test's repository.

#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>
#include <sstream>

#include <grpcpp/grpcpp.h>
#include <pqxx/pqxx>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/json/json.h"
#include "ferry/v1/audit.pb.h"
#include "ferry/v1/repo_watcher.grpc.pb.h"
#include "services/repo-watcher/webhook_handler.h"
#include "tests/repo-watcher/git_test_repo.h"
#include "tests/support/service_process.h"
#include "tests/support/test_certs.h"
#include "tests/support/test_database.h"

namespace ferry {
namespace {

using nlohmann::json;
using testing::GitTestRepo;
using testing::ServiceProcess;

constexpr char kSecret[] = "r3view-hook-s3cret";

json Payload(const std::string& name) {
  std::ifstream in(std::string(FERRY_WEBHOOK_TESTDATA) + "/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  absl::StatusOr<json> j = ParseJson(ss.str());
  EXPECT_TRUE(j.ok()) << name << ": " << j.status();
  return j.ok() ? *j : json::object();
}

class ReviewEventsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("rw-review");
    repo_ = std::make_unique<GitTestRepo>(dir_);
    std::ofstream(dir_ + "/webhook-secret") << kSecret << "\n";
    webhook_port_ = testing::FreePort();
    auto svc = ServiceProcess::Start(
        "ferry-repo-watcher", {"--database-url=" + db_.url(), "--cache-dir=" + dir_ + "/cache",
                               absl::StrCat("--webhook-address=127.0.0.1:", webhook_port_),
                               "--audit-address=127.0.0.1:1", "--secrets-dir=" + dir_, "--log-level=debug",
                               // Every rejection audited: the test counts them.
                               "--webhook-rejection-audit-interval=0s"});
    ASSERT_TRUE(svc.ok()) << svc.status();
    svc_ = std::move(*svc);
    stub_ = v1::RepoWatcher::NewStub(grpc::CreateChannel(svc_->grpc_target(), grpc::InsecureChannelCredentials()));
    main1_ = repo_->Commit({{"apps/web/app.yaml", "v: 1\n"}}, "main 1");
    repo_->Push("main");
    v1::Repository spec;
    spec.set_id("apps");
    spec.set_url(repo_->remote_path());
    spec.add_branches("main");
    spec.add_branches("release");
    spec.mutable_poll_interval()->set_seconds(3600);  // only webhooks and explicit refreshes check
    spec.mutable_webhook_secret()->set_file(dir_ + "/webhook-secret");
    grpc::ClientContext ctx;
    v1::CreateRepositoryRequest req;
    *req.mutable_repository() = spec;
    v1::Repository out;
    grpc::Status s = stub_->CreateRepository(&ctx, req, &out);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_TRUE(WaitFor([&] { return Revisions().size() == 1; })) << svc_->Log();
  }

  // POSTs `body` as `provider` sends event `event`, signed with the secret.
  httplib::Result Send(const std::string& provider, const std::string& event, const std::string& body,
                       const std::string& secret = kSecret) {
    httplib::Client hook("127.0.0.1", webhook_port_);
    hook.set_read_timeout(30, 0);
    httplib::Headers h;
    const std::string mac = repo_watcher::HmacSha256Hex(secret, body);
    if (provider == "github") {
      h = {{"X-GitHub-Event", event}, {"X-Hub-Signature-256", "sha256=" + mac}, {"X-GitHub-Delivery", "d-1"}};
    } else if (provider == "gitlab") {
      h = {{"X-Gitlab-Event", event}, {"X-Gitlab-Token", secret}};
    } else {
      // Gitea names the event twice (X-Gitea-Event is "pull_request" for a sync too).
      h = {{"X-Gitea-Event", event == "pull_request_sync" ? "pull_request" : event},
           {"X-Gitea-Event-Type", event},
           {"X-Gitea-Signature", mac}};
    }
    return hook.Post(absl::StrCat("/webhooks/", provider, "/apps"), h, body, "application/json");
  }

  static bool WaitFor(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(20)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (done()) return true;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return done();
  }

  std::vector<v1::Revision> Revisions() {
    grpc::ClientContext ctx;
    v1::ListRevisionsRequest req;
    req.set_repository_id("apps");
    req.set_include_rejected(true);
    req.set_order(v1::SORT_ORDER_ASCENDING);
    req.set_page_size(1000);
    v1::ListRevisionsResponse resp;
    EXPECT_TRUE(stub_->ListRevisions(&ctx, req, &resp).ok());
    return {resp.revisions().begin(), resp.revisions().end()};
  }

  std::vector<v1::PullRequest> PullRequests(bool include_closed = false) {
    grpc::ClientContext ctx;
    v1::ListPullRequestsRequest req;
    req.set_repository_id("apps");
    req.set_include_closed(include_closed);
    v1::ListPullRequestsResponse resp;
    grpc::Status s = stub_->ListPullRequests(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return {resp.pull_requests().begin(), resp.pull_requests().end()};
  }

  std::vector<v1::CommitCheck> Checks(const std::string& sha) {
    grpc::ClientContext ctx;
    v1::ListChecksRequest req;
    req.set_repository_id("apps");
    req.set_sha(sha);
    v1::ListChecksResponse resp;
    grpc::Status s = stub_->ListChecks(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return {resp.checks().begin(), resp.checks().end()};
  }

  // Reads review events after `cursor` until `n` arrived or `timeout`.
  std::vector<v1::WatchReviewEventsResponse> Events(const std::string& cursor, size_t n,
                                                    absl::Duration timeout = absl::Seconds(10)) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    v1::WatchReviewEventsRequest req;
    req.set_cursor(cursor);
    auto reader = stub_->WatchReviewEvents(&ctx, req);
    std::vector<v1::WatchReviewEventsResponse> out;
    v1::WatchReviewEventsResponse e;
    while (out.size() < n && reader->Read(&e)) out.push_back(e);
    ctx.TryCancel();
    (void)reader->Finish();
    return out;
  }

  // Whether the mirror holds `sha`: ReadContent at it lists the root.
  bool MirrorHas(const std::string& sha) {
    grpc::ClientContext ctx;
    v1::ReadContentRequest req;
    req.set_repository_id("apps");
    req.set_commit(sha);
    req.set_metadata_only(true);
    auto reader = stub_->ReadContent(&ctx, req);
    v1::ReadContentResponse chunk;
    bool any = false;
    while (reader->Read(&chunk)) any = true;
    return reader->Finish().ok() && any;
  }

  int CountEvents(v1::AuditAction action, const std::string& needle = "") {
    int n = 0;
    auto pool = db_.Pool(1);
    EXPECT_TRUE(pool->RunInTransaction([&](pqxx::work& txn) {
                      for (const auto& row : txn.exec("SELECT event FROM repo_watcher.outbox ORDER BY id")) {
                        v1::Event e;
                        e.ParseFromString(pqxx::binarystring(row[0]).str());
                        if (e.action() == action && absl::StrContains(e.DebugString(), needle)) ++n;
                      }
                      return absl::OkStatus();
                    }).ok());
    return n;
  }

  // A GitHub pull_request payload of the documentation, made ours.
  json GitHubPull(const std::string& action, int number, const std::string& head_sha) {
    json j = Payload("github/pull_request_" + std::string(action == "synchronize" ? "synchronize" : action) + ".json");
    j["action"] = action;
    j["number"] = number;
    j["pull_request"]["number"] = number;
    j["pull_request"]["head"]["sha"] = head_sha;
    j["pull_request"]["base"]["ref"] = "main";
    return j;
  }

  testing::TestDatabase db_;
  std::string dir_;
  std::unique_ptr<GitTestRepo> repo_;
  int webhook_port_ = 0;
  std::unique_ptr<ServiceProcess> svc_;
  std::unique_ptr<v1::RepoWatcher::Stub> stub_;
  std::string main1_;
};

TEST_F(ReviewEventsTest, APushChecksOnlyTheRefsItNames) {
  repo_->Git({"checkout", "-q", "-b", "release"});
  std::string release1 = repo_->Commit({{"r", "1"}}, "release 1");
  repo_->Push("release");
  repo_->Git({"checkout", "-q", "main"});
  std::string main2 = repo_->Commit({{"apps/web/app.yaml", "v: 2\n"}}, "main 2");
  repo_->Push("main");

  // GitHub's documented push, naming refs/heads/main only.
  json push = Payload("github/push.json");
  push["ref"] = "refs/heads/main";
  push["after"] = main2;
  auto res = Send("github", "push", DumpJsonLossy(push));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 202) << res->body;
  EXPECT_EQ(res->body, "check of refs/heads/main of apps triggered\n");
  ASSERT_TRUE(WaitFor([&] { return Revisions().size() == 2; })) << svc_->Log();
  absl::SleepFor(absl::Milliseconds(500));
  std::vector<v1::Revision> revs = Revisions();
  ASSERT_EQ(revs.size(), 2u) << "release moved too, but the push did not name it";
  EXPECT_EQ(revs[1].ref(), "refs/heads/main");
  EXPECT_EQ(revs[1].sha(), main2);

  // GitLab's documented push of an untracked branch: nothing is checked.
  json feature = Payload("gitlab/push.json");
  feature["ref"] = "refs/heads/feature";
  res = Send("gitlab", "Push Hook", DumpJsonLossy(feature));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 202);
  EXPECT_EQ(res->body, "ignored: refs/heads/feature is not tracked by apps\n");

  // Gitea's push of release: now it is checked.
  json gitea = Payload("gitea/push.json");
  gitea["ref"] = "refs/heads/release";
  res = Send("gitea", "push", DumpJsonLossy(gitea));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 202) << res->body;
  ASSERT_TRUE(WaitFor([&] { return Revisions().size() == 3; })) << svc_->Log();
  EXPECT_EQ(Revisions()[2].ref(), "refs/heads/release");
  EXPECT_EQ(Revisions()[2].sha(), release1);
  std::string metrics;
  httplib::Client m("127.0.0.1", svc_->metrics_port());
  if (auto r = m.Get("/metrics")) metrics = r->body;
  EXPECT_NE(metrics.find(R"(ferry_webhook_requests_total{provider="gitlab",result="ignored"} 1)"), std::string::npos)
      << metrics;
}

TEST_F(ReviewEventsTest, AGitHubPullRequestIsFetchedUpdatedAndClosedButNeverDeployed) {
  repo_->Git({"checkout", "-q", "-b", "feature"});
  std::string head1 = repo_->Commit({{"apps/web/app.yaml", "v: pr\n"}}, "pr 1");
  repo_->Git({"push", "-q", "origin", "feature:refs/pull/7/head"});
  ASSERT_FALSE(MirrorHas(head1));
  const std::vector<v1::WatchReviewEventsResponse> before = Events("", 100, absl::Milliseconds(300));

  auto res = Send("github", "pull_request", DumpJsonLossy(GitHubPull("opened", 7, head1)));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body << svc_->Log();
  std::vector<v1::PullRequest> prs = PullRequests();
  ASSERT_EQ(prs.size(), 1u);
  EXPECT_EQ(prs[0].number(), 7);
  EXPECT_EQ(prs[0].state(), v1::PULL_REQUEST_STATE_OPEN);
  EXPECT_EQ(prs[0].head_ref(), "refs/pull/7/head");
  EXPECT_EQ(prs[0].head_sha(), head1);
  EXPECT_EQ(prs[0].base_ref(), "refs/heads/main");
  EXPECT_EQ(prs[0].base_sha(), main1_);
  EXPECT_EQ(prs[0].title(), "Update the README with new information.");
  EXPECT_EQ(prs[0].author(), "Codertocat");
  EXPECT_TRUE(MirrorHas(head1)) << "the head was fetched into the mirror";
  std::vector<v1::WatchReviewEventsResponse> events = Events("", before.size() + 1);
  ASSERT_EQ(events.size(), before.size() + 1);
  EXPECT_EQ(events.back().pull_request().head_sha(), head1);
  EXPECT_EQ(events.back().pull_request().state(), v1::PULL_REQUEST_STATE_OPEN);
  const std::string opened_cursor = events.back().cursor();

  // A push to the pull request moves its head.
  std::string head2 = repo_->Commit({{"apps/web/app.yaml", "v: pr2\n"}}, "pr 2");
  repo_->Git({"push", "-q", "origin", "feature:refs/pull/7/head"});
  const std::string sync = DumpJsonLossy(GitHubPull("synchronize", 7, head2));
  res = Send("github", "pull_request", sync);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  prs = PullRequests();
  ASSERT_EQ(prs.size(), 1u);
  EXPECT_EQ(prs[0].head_sha(), head2);
  EXPECT_TRUE(MirrorHas(head2));
  events = Events(opened_cursor, 1);
  ASSERT_EQ(events.size(), 1u) << "resumed after the opening: exactly the update";
  EXPECT_EQ(events[0].pull_request().head_sha(), head2);
  // A redelivery changes nothing and emits nothing.
  res = Send("github", "pull_request", sync);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(Events(events[0].cursor(), 1, absl::Milliseconds(700)).size(), 0u);
  EXPECT_EQ(CountEvents(v1::AUDIT_ACTION_PULL_REQUEST_OPENED), 1);
  EXPECT_EQ(CountEvents(v1::AUDIT_ACTION_PULL_REQUEST_UPDATED), 1);

  // Merged.
  json closed = GitHubPull("closed", 7, head2);
  closed["pull_request"]["merged"] = true;
  res = Send("github", "pull_request", DumpJsonLossy(closed));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_TRUE(PullRequests().empty());
  prs = PullRequests(/*include_closed=*/true);
  ASSERT_EQ(prs.size(), 1u);
  EXPECT_EQ(prs[0].state(), v1::PULL_REQUEST_STATE_MERGED);
  events = Events(events[0].cursor(), 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].pull_request().state(), v1::PULL_REQUEST_STATE_MERGED);
  EXPECT_EQ(CountEvents(v1::AUDIT_ACTION_PULL_REQUEST_CLOSED), 1);

  // Never a deploy revision: the revision stream has main only.
  grpc::ClientContext rctx;
  v1::RefreshRepositoryRequest refresh;
  refresh.set_repository_id("apps");
  refresh.set_wait(true);
  v1::RefreshRepositoryResponse refreshed;
  ASSERT_TRUE(stub_->RefreshRepository(&rctx, refresh, &refreshed).ok());
  for (const v1::Revision& r : Revisions()) EXPECT_EQ(r.ref(), "refs/heads/main");
  for (const v1::RefState& r : refreshed.status().refs()) EXPECT_EQ(r.ref(), "refs/heads/main");
}

// Another replica (same database, its own mirror) never received the
// webhook: asked for the pull request's head it fetches it on demand,
// follows the pull request's updates, and fetches nothing for a commit that
// is no open pull request's.
TEST_F(ReviewEventsTest, AnyReplicaServesAPullRequestHeadAnotherReplicaReceived) {
  auto other = ServiceProcess::Start("ferry-repo-watcher", {"--database-url=" + db_.url(),
                                                            "--cache-dir=" + dir_ + "/cache-2",
                                                            "--audit-address=127.0.0.1:1", "--secrets-dir=" + dir_});
  ASSERT_TRUE(other.ok()) << other.status();
  auto other_stub =
      v1::RepoWatcher::NewStub(grpc::CreateChannel((*other)->grpc_target(), grpc::InsecureChannelCredentials()));
  auto read_root = [&](const std::string& sha, std::string* names) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    v1::ReadContentRequest req;
    req.set_repository_id("apps");
    req.set_commit(sha);
    req.set_path("apps/web");
    auto reader = other_stub->ReadContent(&ctx, req);
    v1::ReadContentResponse chunk;
    while (reader->Read(&chunk)) absl::StrAppend(names, chunk.path(), "=", chunk.data(), ";");
    return reader->Finish();
  };

  repo_->Git({"checkout", "-q", "-b", "feature"});
  const std::string head1 = repo_->Commit({{"apps/web/app.yaml", "v: pr\n"}}, "pr 1");
  repo_->Git({"push", "-q", "origin", "feature:refs/pull/8/head"});
  // Not yet an open pull request: the other replica does not fetch it.
  std::string names;
  grpc::Status before = read_root(head1, &names);
  EXPECT_EQ(before.error_code(), grpc::StatusCode::NOT_FOUND) << before.error_message();

  auto res = Send("github", "pull_request", DumpJsonLossy(GitHubPull("opened", 8, head1)));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body << svc_->Log();
  names.clear();
  grpc::Status read = read_root(head1, &names);
  ASSERT_TRUE(read.ok()) << read.error_message() << (*other)->Log();
  EXPECT_EQ(names, "apps/web/app.yaml=v: pr\n;");
  EXPECT_TRUE(absl::StrContains((*other)->Log(), "pull request fetched on demand")) << (*other)->Log();
  // The target's tip too (previews diff against it).
  names.clear();
  ASSERT_TRUE(read_root(main1_, &names).ok());
  EXPECT_EQ(names, "apps/web/app.yaml=v: 1\n;");

  // A push to the pull request, announced to the first replica only.
  const std::string head2 = repo_->Commit({{"apps/web/app.yaml", "v: pr2\n"}}, "pr 2");
  repo_->Git({"push", "-q", "origin", "feature:refs/pull/8/head"});
  res = Send("github", "pull_request", DumpJsonLossy(GitHubPull("synchronize", 8, head2)));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  names.clear();
  read = read_root(head2, &names);
  ASSERT_TRUE(read.ok()) << read.error_message() << (*other)->Log();
  EXPECT_EQ(names, "apps/web/app.yaml=v: pr2\n;");

  // A commit on the remote that is no open pull request's stays unserved.
  const std::string stray = repo_->Commit({{"apps/web/app.yaml", "v: stray\n"}}, "stray");
  repo_->Git({"push", "-q", "origin", "feature:refs/pull/9/head"});
  names.clear();
  grpc::Status unserved = read_root(stray, &names);
  EXPECT_EQ(unserved.error_code(), grpc::StatusCode::NOT_FOUND) << unserved.error_message();
  EXPECT_TRUE((*other)->Stop().ok());
}

TEST_F(ReviewEventsTest, AGitLabMergeRequestAndAGiteaPullRequestFollowTheirHosts) {
  repo_->Git({"checkout", "-q", "-b", "mr"});
  std::string head = repo_->Commit({{"x", "1"}}, "mr 1");
  repo_->Git({"push", "-q", "origin", "mr:refs/merge-requests/3/head"});
  json mr = Payload("gitlab/merge_request.json");
  mr["object_attributes"]["iid"] = 3;
  mr["object_attributes"]["last_commit"]["id"] = head;
  mr["object_attributes"]["target_branch"] = "main";
  auto res = Send("gitlab", "Merge Request Hook", DumpJsonLossy(mr));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body << svc_->Log();
  std::vector<v1::PullRequest> prs = PullRequests();
  ASSERT_EQ(prs.size(), 1u);
  EXPECT_EQ(prs[0].head_ref(), "refs/merge-requests/3/head");
  EXPECT_EQ(prs[0].head_sha(), head);
  EXPECT_TRUE(MirrorHas(head));
  mr["object_attributes"]["action"] = "close";
  res = Send("gitlab", "Merge Request Hook", DumpJsonLossy(mr));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  prs = PullRequests(true);
  ASSERT_EQ(prs.size(), 1u);
  EXPECT_EQ(prs[0].state(), v1::PULL_REQUEST_STATE_CLOSED);

  // Gitea: a synchronized pull request Ferry never saw opened is recorded open.
  std::string gitea_head = repo_->Commit({{"x", "2"}}, "pr 2");
  repo_->Git({"push", "-q", "origin", "mr:refs/pull/2/head"});
  json pr = Payload("gitea/pull_request_synchronized.json");
  pr["pull_request"]["head"]["sha"] = gitea_head;
  res = Send("gitea", "pull_request_sync", DumpJsonLossy(pr));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  prs = PullRequests();
  ASSERT_EQ(prs.size(), 1u);
  EXPECT_EQ(prs[0].number(), 2);
  EXPECT_EQ(prs[0].head_ref(), "refs/pull/2/head");
  EXPECT_EQ(prs[0].head_sha(), gitea_head);

  // A pull request whose head ref is not on the remote: 502 naming it.
  pr["number"] = 99;
  res = Send("gitea", "pull_request_sync", DumpJsonLossy(pr));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 502);
  EXPECT_NE(res->body.find("refs/pull/99/head is not on the remote"), std::string::npos) << res->body;
}

TEST_F(ReviewEventsTest, ChecksArriveByApiAndByEachHostsWebhook) {
  // By API (this watcher runs without auth: the caller is "anonymous").
  grpc::ClientContext ctx;
  v1::ReportCheckRequest report;
  report.set_repository_id("apps");
  report.set_sha(main1_);
  report.set_name("unit-tests");
  report.set_state(v1::CHECK_STATE_PENDING);
  report.set_url("https://ci.example.com/runs/1");
  v1::CommitCheck made;
  grpc::Status s = stub_->ReportCheck(&ctx, report, &made);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(made.source(), "api");

  json status = Payload("github/status.json");
  status["sha"] = main1_;
  status["context"] = "unit-tests";
  status["state"] = "success";
  auto res = Send("github", "status", DumpJsonLossy(status));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  json run = Payload("github/check_run_completed.json");
  run["check_run"]["head_sha"] = main1_;
  run["check_run"]["conclusion"] = "failure";
  res = Send("github", "check_run", DumpJsonLossy(run));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  json pipeline = Payload("gitlab/pipeline.json");
  pipeline["object_attributes"]["sha"] = main1_;
  res = Send("gitlab", "Pipeline Hook", DumpJsonLossy(pipeline));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  json gitea = Payload("gitea/status.json");
  gitea["sha"] = main1_;
  gitea["state"] = "pending";
  res = Send("gitea", "status", DumpJsonLossy(gitea));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;

  std::vector<v1::CommitCheck> checks = Checks(main1_);
  ASSERT_EQ(checks.size(), 4u);
  EXPECT_EQ(checks[0].name(), "Octocoders-linter");
  EXPECT_EQ(checks[0].state(), v1::CHECK_STATE_FAILURE);
  EXPECT_EQ(checks[0].source(), "github");
  EXPECT_EQ(checks[1].name(), "ci/woodpecker/pr/build");
  EXPECT_EQ(checks[1].state(), v1::CHECK_STATE_PENDING);
  EXPECT_EQ(checks[1].source(), "gitea");
  EXPECT_EQ(checks[2].name(), "pipeline");
  EXPECT_EQ(checks[2].source(), "gitlab");
  EXPECT_EQ(checks[3].name(), "unit-tests");
  EXPECT_EQ(checks[3].state(), v1::CHECK_STATE_SUCCESS) << "the webhook's later report won over the API's";
  EXPECT_EQ(checks[3].reported_by().id(), "webhook:github/apps");
  std::vector<v1::WatchReviewEventsResponse> events = Events("", 5);
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0].check().state(), v1::CHECK_STATE_PENDING);
  EXPECT_EQ(events[1].check().state(), v1::CHECK_STATE_SUCCESS);
  EXPECT_EQ(CountEvents(v1::AUDIT_ACTION_CHECK_REPORTED, "applied"), 5);
}

TEST_F(ReviewEventsTest, BadPayloadsAreRefusedNamingTheFieldAndAudited) {
  json pr = GitHubPull("opened", 8, "not-a-sha");
  auto res = Send("github", "pull_request", DumpJsonLossy(pr));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(res->body, "pull_request.head.sha: must be a 40-character lowercase hex commit id\n");
  json job = Payload("gitlab/job.json");
  job.erase("build_name");
  res = Send("gitlab", "Job Hook", DumpJsonLossy(job));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(res->body, "build_name: is required\n");
  res = Send("gitea", "status", "payload=%7B%7D");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(res->body.rfind("body: must be a JSON object", 0), 0u) << res->body;
  // A bad signature is refused before the body is read.
  res = Send("github", "pull_request", "{not json", "wrong-secret");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  // Unknown events are accepted and ignored; a ping is answered.
  res = Send("github", "issues", "{}");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 202);
  EXPECT_EQ(res->body, "ignored: event \"issues\" ignored\n");
  res = Send("github", "ping", DumpJsonLossy(Payload("github/ping.json")));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_TRUE(PullRequests(true).empty());
  EXPECT_EQ(CountEvents(v1::AUDIT_ACTION_WEBHOOK_REJECTED, "pull_request.head.sha"), 1);
  EXPECT_EQ(CountEvents(v1::AUDIT_ACTION_WEBHOOK_REJECTED, "build_name: is required"), 1);
  EXPECT_EQ(CountEvents(v1::AUDIT_ACTION_WEBHOOK_REJECTED, "bad_payload"), 3);
  EXPECT_EQ(svc_->Log().find(kSecret), std::string::npos) << "secret leaked into logs";
}

TEST_F(ReviewEventsTest, GitHostIsValidatedStoredAndUpdatedByItsMask) {
  std::ofstream(dir_ + "/api-token") << "glpat-s3cret\n";
  v1::UpdateRepositoryRequest req;
  req.mutable_repository()->set_id("apps");
  v1::GitHost* host = req.mutable_repository()->mutable_git_host();
  host->set_kind(v1::GIT_HOST_KIND_GITLAB);
  host->set_api_url("http://gitlab.example.com/api/v4");
  host->set_project("group/apps");
  host->mutable_token()->set_file(dir_ + "/api-token");
  req.mutable_update_mask()->add_paths("git_host");
  v1::Repository out;
  {
    grpc::ClientContext ctx;
    grpc::Status s = stub_->UpdateRepository(&ctx, req, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(s.error_message().rfind("repository.git_host.api_url: ", 0), 0u) << s.error_message();
  }
  host->set_api_url("https://gitlab.example.com/api/v4");
  {
    grpc::ClientContext ctx;
    grpc::Status s = stub_->UpdateRepository(&ctx, req, &out);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  grpc::ClientContext ctx;
  v1::GetRepositoryRequest get;
  get.set_id("apps");
  v1::Repository stored;
  ASSERT_TRUE(stub_->GetRepository(&ctx, get, &stored).ok());
  EXPECT_EQ(stored.git_host().kind(), v1::GIT_HOST_KIND_GITLAB);
  EXPECT_EQ(stored.git_host().project(), "group/apps");
  EXPECT_EQ(stored.git_host().token().file(), dir_ + "/api-token");
  EXPECT_EQ(stored.branches_size(), 2) << "fields outside the mask are kept";
  EXPECT_EQ(CountEvents(v1::AUDIT_ACTION_REPOSITORY_UPDATED, "git_host_kind"), 1);
  EXPECT_EQ(CountEvents(v1::AUDIT_ACTION_REPOSITORY_UPDATED, "glpat-s3cret"), 0);
}

// ReportCheck needs the report-checks permission (the ci role); reading
// checks needs view. Here with mutual TLS and a policy binding the
// deployer's certificate to the ci role and the planner's to viewer.
TEST(ReviewAccessTest, OnlyTheCiRoleMayReportChecks) {
  testing::TestDatabase db;
  const std::string dir = testing::MakeTempDir("rw-review-access");
  std::ofstream(dir + "/policy.yaml") << "bindings:\n"
                                         "  - subjects: [\"service:deployer\"]\n    role: ci\n"
                                         "  - subjects: [\"service:audit\"]\n    role: viewer\n";
  GitTestRepo repo(dir);
  std::string sha = repo.Commit({{"f", "1"}}, "c1");
  repo.Push("main");
  std::vector<std::string> args = testing::TestCerts::Get().Flags("repo-watcher");
  for (const std::string& a :
       {"--database-url=" + db.url(), "--cache-dir=" + dir + "/cache", std::string("--webhook-address=127.0.0.1:0"),
        std::string("--audit-address=127.0.0.1:1"), "--access-policy-file=" + dir + "/policy.yaml"}) {
    args.push_back(a);
  }
  auto svc = ServiceProcess::Start("ferry-repo-watcher", args);
  ASSERT_TRUE(svc.ok()) << svc.status();
  auto as = [&](const std::string& service) {
    return v1::RepoWatcher::NewStub(grpc::CreateChannel(
        (*svc)->grpc_target(), service.empty() ? testing::TestCerts::Get().UserCredentials()
                                               : testing::TestCerts::Get().ServiceCredentials(service)));
  };
  // No repository is registered (nobody here is admin): the ci caller gets
  // past access control to NOT_FOUND, everyone else is refused before it.
  v1::ReportCheckRequest report;
  report.set_repository_id("apps");
  report.set_sha(sha);
  report.set_name("build");
  report.set_state(v1::CHECK_STATE_SUCCESS);
  v1::CommitCheck out;
  {
    grpc::ClientContext ctx;
    grpc::Status s = as("deployer")->ReportCheck(&ctx, report, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
    EXPECT_EQ(s.error_message(), "repository_id: repository \"apps\" is not registered");
  }
  for (const std::string who : {"audit", "planner", ""}) {
    grpc::ClientContext ctx;
    grpc::Status s = as(who)->ReportCheck(&ctx, report, &out);
    EXPECT_EQ(s.error_code(), who.empty() ? grpc::StatusCode::UNAUTHENTICATED : grpc::StatusCode::PERMISSION_DENIED)
        << who << ": " << s.error_message();
    if (who == "audit") {
      EXPECT_NE(s.error_message().find("report-checks"), std::string::npos) << s.error_message();
    }
  }
  // Reading is view: the viewer may, the ci role may too.
  for (const std::string who : {"audit", "deployer"}) {
    grpc::ClientContext ctx;
    v1::ListChecksRequest list;
    list.set_repository_id("apps");
    list.set_sha(sha);
    v1::ListChecksResponse checks;
    grpc::Status s = as(who)->ListChecks(&ctx, list, &checks);
    EXPECT_TRUE(s.ok()) << who << ": " << s.error_message();
  }
}

}  // namespace
}  // namespace ferry
