// Commit statuses end to end below the gRPC layer: the ingester (with a
// fake repository source, the seam to the repo-watcher), the real
// PostgreSQL outbox, the delivery worker and libcurl, against a local HTTP
// server that speaks GitHub's, GitLab's and Gitea's commit status APIs as
// they document them (method, path, token header, accepted states, 201).
#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>
#include <map>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/concurrency/mutex.h"
#include "common/postgres/migrator.h"
#include "common/secrets/secret_sources.h"
#include "notifier_migrations.h"
#include "services/notifier/curl_transports.h"
#include "services/notifier/declared_subscription_sync.h"
#include "services/notifier/delivery_sender.h"
#include "services/notifier/delivery_worker.h"
#include "services/notifier/event_ingester.h"
#include "services/notifier/postgres_notifier_store.h"
#include "tests/support/test_database.h"

namespace ferry::notifier {
namespace {

const std::string kSha1 = "1111111111111111111111111111111111111111";
const std::string kSha2 = "2222222222222222222222222222222222222222";

struct Status {
  std::string host;     // github, gitlab, gitea
  std::string project;  // owner/repo or the decoded GitLab id
  std::string sha;
  std::string state;
  std::string context;
  std::string description;
};

// GitHub: POST /repos/{owner}/{repo}/statuses/{sha}, "Authorization: Bearer",
//   state one of error, failure, pending, success; "context".
// GitLab: POST /projects/{id}/statuses/{sha} (id: number or URL-encoded path),
//   "PRIVATE-TOKEN", state one of pending, running, success, failed, canceled; "name".
// Gitea:  POST /repos/{owner}/{repo}/statuses/{sha}, "Authorization: token",
//   state one of pending, success, error, failure, warning; "context".
// Each answers 201 with the status, 401 for a wrong token, 422 for a bad state.
class FakeGitHosts {
 public:
  FakeGitHosts() {
    server_.Post(R"(/github/repos/([^/]+)/([^/]+)/statuses/([0-9a-f]{40}))",
                 [this](const httplib::Request& req, httplib::Response& res) {
                   Handle(req, res, "github", req.matches[1].str() + "/" + req.matches[2].str(), req.matches[3],
                          req.get_header_value("Authorization") == "Bearer tok-github" &&
                              req.get_header_value("Accept") == "application/vnd.github+json",
                          {"error", "failure", "pending", "success"}, "context");
                 });
    // httplib matches the decoded path; the raw target must hold the
    // project path URL-encoded, as GitLab requires ("acme%2Fshop").
    server_.Post(R"(/gitlab/api/v4/projects/(.+)/statuses/([0-9a-f]{40}))",
                 [this](const httplib::Request& req, httplib::Response& res) {
                   const std::string raw_id = req.target.substr(24, req.target.find("/statuses/") - 24);
                   if (raw_id.find('/') != std::string::npos) {
                     res.status = 404;
                     return;
                   }
                   Handle(req, res, "gitlab", req.matches[1], req.matches[2],
                          req.get_header_value("PRIVATE-TOKEN") == "tok-gitlab",
                          {"pending", "running", "success", "failed", "canceled"}, "name");
                 });
    server_.Post(R"(/gitea/api/v1/repos/([^/]+)/([^/]+)/statuses/([0-9a-f]{40}))",
                 [this](const httplib::Request& req, httplib::Response& res) {
                   Handle(req, res, "gitea", req.matches[1].str() + "/" + req.matches[2].str(), req.matches[3],
                          req.get_header_value("Authorization") == "token tok-gitea",
                          {"pending", "success", "error", "failure", "warning"}, "context");
                 });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~FakeGitHosts() {
    server_.stop();
    thread_.join();
  }
  std::string Base(const std::string& host) const { return absl::StrCat("http://127.0.0.1:", port_, "/", host); }
  std::vector<Status> Got() {
    MutexLock lock(&mu_);
    return got_;
  }

 private:
  void Handle(const httplib::Request& req, httplib::Response& res, const std::string& host, const std::string& project,
              const std::string& sha, bool authorized, const std::set<std::string>& states,
              const std::string& context_field) {
    if (!authorized) {
      res.status = 401;
      res.set_content(R"({"message":"Bad credentials"})", "application/json");
      return;
    }
    nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
    if (!body.is_object() || !body.contains("state") || states.count(body["state"].get<std::string>()) == 0 ||
        req.get_header_value("Content-Type") != "application/json") {
      res.status = 422;
      res.set_content(R"({"message":"Validation Failed"})", "application/json");
      return;
    }
    {
      MutexLock lock(&mu_);
      got_.push_back({host, project, sha, body["state"], body.value(context_field, "default"),
                      body.value("description", "")});
    }
    res.status = 201;
    res.set_content(nlohmann::json({{"state", body["state"]}, {"id", 1}}).dump(), "application/json");
  }

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  Mutex mu_;
  std::vector<Status> got_ ABSL_GUARDED_BY(mu_);
};

class FakeRepositories : public RepositorySource {
 public:
  absl::StatusOr<v1::GitHost> GitHostOf(const std::string& id) override {
    ++reads;
    if (!up || down.count(id) > 0) return absl::UnavailableError("repo-watcher down");
    auto it = hosts.find(id);
    if (it == hosts.end()) return absl::NotFoundError("no repository " + id);
    return it->second;
  }
  std::map<std::string, v1::GitHost> hosts;
  bool up = true;
  std::set<std::string> down;  // these fail as if the repo-watcher were down
  int reads = 0;
};

class CommitStatusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pool_ = db_.Pool();
    ASSERT_TRUE(postgres::Migrate(*pool_, NotifierMigrations()).ok());
    store_ = std::make_unique<PostgresNotifierStore>(*pool_);
    dir_ = testing::MakeTempDir("ferry-commit-status");
    for (const char* host : {"github", "gitlab", "gitea"}) std::ofstream(dir_ + "/" + host + ".token") << "tok-" << host << "\n";
    std::ofstream(dir_ + "/wrong.token") << "nope\n";
    auto sources = secrets::SecretSources::Create({.service = "notifier", .secrets_dir = dir_});
    ASSERT_TRUE(sources.ok()) << sources.status();
    sources_ = std::make_unique<secrets::SecretSources>(*std::move(sources));
    sender_ = std::make_unique<DeliverySender>(http_, mail_, [this](const v1::SecretRef& ref, const std::string& f) {
      return sources_->Read(ref, f);
    });
    repos_.hosts["gh"] = Host(v1::GIT_HOST_KIND_GITHUB, hosts_.Base("github"), "acme/shop", "github.token");
    repos_.hosts["gl"] = Host(v1::GIT_HOST_KIND_GITLAB, hosts_.Base("gitlab") + "/api/v4", "acme/platform/shop",
                              "gitlab.token");
    repos_.hosts["gt"] = Host(v1::GIT_HOST_KIND_GITEA, hosts_.Base("gitea") + "/api/v1/", "acme/shop", "gitea.token");
    repos_.hosts["plain"] = v1::GitHost();  // no git_host: no status
    repos_.hosts["bad-token"] = Host(v1::GIT_HOST_KIND_GITHUB, hosts_.Base("github"), "acme/shop", "wrong.token");
  }

  static v1::GitHost Host(v1::GitHostKind kind, const std::string& url, const std::string& project,
                          const std::string& token_file) {
    v1::GitHost h;
    h.set_kind(kind);
    h.set_api_url(url);
    h.set_project(project);
    h.mutable_token()->set_file(token_file);
    return h;
  }

  v1::Event Event(v1::AuditAction action, const std::string& repo, const std::string& sha, const std::string& env) {
    v1::Event e;
    e.set_sequence(++seq_);
    e.set_action(action);
    e.mutable_subject()->set_repository_id(repo);
    e.mutable_subject()->set_environment_id(env);
    e.mutable_subject()->set_application_id("shop");
    e.mutable_subject()->set_plan_id("p" + std::to_string(seq_));
    e.mutable_subject()->set_commit_sha(sha);
    return e;
  }

  void Drain(DeliveryWorker& worker) {
    for (int i = 0; i < 20; ++i) {
      ASSERT_TRUE(worker.RunOnce().ok());
      auto c = store_->Counts();
      ASSERT_TRUE(c.ok());
      if (c->pending == 0) return;
    }
    FAIL() << "deliveries still pending";
  }

  testing::TestDatabase db_;
  std::unique_ptr<postgres::ConnectionPool> pool_;
  std::unique_ptr<PostgresNotifierStore> store_;
  std::string dir_;
  FakeGitHosts hosts_;
  FakeRepositories repos_;
  CurlHttpTransport http_;
  CurlMailTransport mail_;
  std::unique_ptr<secrets::SecretSources> sources_;
  std::unique_ptr<DeliverySender> sender_;
  int64_t seq_ = 0;
};

// The planner's applications, counting the reads.
class CountingApplications : public ApplicationSource {
 public:
  absl::StatusOr<std::vector<v1::Application>> ListApplications() override {
    ++reads;
    return apps;
  }
  std::vector<v1::Application> apps;
  int reads = 0;
};

// Declares on `app` (as its ferry.yaml would) a webhook for shop's failed
// deployments.
void DeclareFailureWebhook(v1::Application& app) {
  v1::Subscription* s = app.add_notifications();
  s->set_name("failures");
  s->set_application_id("shop");
  s->add_events(v1::NOTIFICATION_EVENT_DEPLOYMENT_FAILED);
  s->set_template_("{{event}} {{application}}");
  s->mutable_sink()->set_kind(v1::SINK_KIND_WEBHOOK);
  s->mutable_sink()->set_url("https://hooks.example.invalid/x");
}

// Issue #23: each APPLICATION_* event read every application from the
// planner (10,000 applications registered: 10,000 reads of 10,000, for
// hours). A run of them now costs one read, made before the next event that
// is matched against subscriptions, which still sees the new subscription.
TEST_F(CommitStatusTest, ARunOfApplicationEventsSyncsDeclaredSubscriptionsOnceBeforeTheNextMatchedEvent) {
  CountingApplications apps;
  DeclaredSubscriptionSync declared(*store_, apps);
  EventIngester ingester(*store_, nullptr, nullptr, &declared);
  for (int i = 0; i < 50; ++i) {
    v1::Application a;
    a.set_id(absl::StrCat("app", i));
    apps.apps.push_back(a);
  }
  v1::Application& shop = apps.apps[7];
  shop.set_id("shop");
  DeclareFailureWebhook(shop);
  for (int i = 0; i < 50; ++i) {
    v1::Event e = Event(v1::AUDIT_ACTION_APPLICATION_CREATED, "plain", kSha1, "prod");
    e.mutable_subject()->set_application_id(apps.apps[i].id());
    ASSERT_TRUE(ingester.Ingest(e).ok());
  }
  EXPECT_EQ(apps.reads, 0) << "no read per application event";
  // Not matched against subscriptions (no approval waiting): no read yet.
  ASSERT_TRUE(ingester.Ingest(Event(v1::AUDIT_ACTION_PLAN_CREATED, "plain", kSha1, "prod")).ok());
  EXPECT_EQ(apps.reads, 0);
  ASSERT_TRUE(ingester.Ingest(Event(v1::AUDIT_ACTION_DEPLOYMENT_FAILED, "plain", kSha1, "prod")).ok());
  EXPECT_EQ(apps.reads, 1) << "one read before the first matched event";
  absl::StatusOr<DeliveryCounts> counts = store_->Counts();
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_EQ(counts->pending, 1) << "the failure matched the subscription shop declared";
  ASSERT_TRUE(ingester.Ingest(Event(v1::AUDIT_ACTION_DEPLOYMENT_FAILED, "plain", kSha1, "prod")).ok());
  EXPECT_EQ(apps.reads, 1) << "nothing changed since: no second read";
  // An application changed: read again before the next matched event.
  ASSERT_TRUE(ingester.Ingest(Event(v1::AUDIT_ACTION_APPLICATION_UPDATED, "plain", kSha1, "prod")).ok());
  ASSERT_TRUE(ingester.Ingest(Event(v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED, "plain", kSha1, "prod")).ok());
  EXPECT_EQ(apps.reads, 2);
}

TEST_F(CommitStatusTest, PendingWhenPlannedThenSuccessOrFailurePerEnvironmentOnEachHost) {
  EventIngester ingester(*store_, &repos_, nullptr);
  DeliveryWorker worker(*store_, *sender_, {.batch = 5}, nullptr);
  std::vector<v1::Event> events = {
      Event(v1::AUDIT_ACTION_PLAN_CREATED, "gh", kSha1, "staging"),
      Event(v1::AUDIT_ACTION_PLAN_CREATED, "gh", kSha1, "prod"),
      Event(v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED, "gh", kSha1, "staging"),
      Event(v1::AUDIT_ACTION_DEPLOYMENT_FAILED, "gh", kSha1, "prod"),
      Event(v1::AUDIT_ACTION_PLAN_CREATED, "gl", kSha2, "prod"),
      Event(v1::AUDIT_ACTION_DEPLOYMENT_FAILED, "gl", kSha2, "prod"),
      Event(v1::AUDIT_ACTION_PLAN_CREATED, "gt", kSha2, "qa"),
      Event(v1::AUDIT_ACTION_DEPLOYMENT_ROLLED_BACK, "gt", kSha2, "qa"),
      Event(v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED, "plain", kSha1, "prod"),    // no git_host
      Event(v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED, "deleted", kSha1, "prod"),  // repository gone
      Event(v1::AUDIT_ACTION_DRIFT_DETECTED, "gh", kSha1, "prod"),             // no status for drift
  };
  for (const v1::Event& e : events) ASSERT_TRUE(ingester.Ingest(e).ok());
  // Replayed by Tail after a restart: recorded once.
  for (const v1::Event& e : events) ASSERT_TRUE(ingester.Ingest(e).ok());
  Drain(worker);
  std::vector<Status> got = hosts_.Got();
  ASSERT_EQ(got.size(), 8u);
  auto is = [](const Status& s, const std::string& host, const std::string& project, const std::string& sha,
               const std::string& state, const std::string& context) {
    return s.host == host && s.project == project && s.sha == sha && s.state == state && s.context == context;
  };
  EXPECT_TRUE(is(got[0], "github", "acme/shop", kSha1, "pending", "ferry/staging"));
  EXPECT_TRUE(is(got[1], "github", "acme/shop", kSha1, "pending", "ferry/prod"));
  EXPECT_TRUE(is(got[2], "github", "acme/shop", kSha1, "success", "ferry/staging"));
  EXPECT_TRUE(is(got[3], "github", "acme/shop", kSha1, "failure", "ferry/prod"));
  EXPECT_TRUE(is(got[4], "gitlab", "acme/platform/shop", kSha2, "pending", "ferry/prod"));
  EXPECT_TRUE(is(got[5], "gitlab", "acme/platform/shop", kSha2, "failed", "ferry/prod"));
  EXPECT_TRUE(is(got[6], "gitea", "acme/shop", kSha2, "pending", "ferry/qa"));
  EXPECT_TRUE(is(got[7], "gitea", "acme/shop", kSha2, "failure", "ferry/qa"));
  EXPECT_EQ(got[0].description, "planned for staging (plan p1)");
  EXPECT_EQ(got[7].description, "deployment to qa failed and was rolled back");
  auto cursor = store_->Cursor();
  ASSERT_TRUE(cursor.ok());
  EXPECT_EQ(*cursor, seq_);
  auto rows = store_->ListDeliveries(v1::DELIVERY_STATE_DELIVERED, "commit-status/gh", 0, 100);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 4u);
  EXPECT_EQ((*rows)[0].target(), "github commit status 111111111111 ferry/prod failure");
}

// Issue #23: the events Tail delivered together are recorded in one
// transaction that moves the cursor once, each repository's Git host asked
// once for them. A batch that fails part-way records none of it (the
// cursor stays, the batch is retried whole), and a replayed or overlapping
// batch adds no delivery twice.
TEST_F(CommitStatusTest, ABatchIsRecordedWholeOrNotAtAllAndReplaysAddNothing) {
  EventIngester ingester(*store_, &repos_, nullptr);
  std::vector<v1::Event> first = {
      Event(v1::AUDIT_ACTION_PLAN_CREATED, "gh", kSha1, "staging"),
      Event(v1::AUDIT_ACTION_PLAN_CREATED, "gh", kSha1, "prod"),
      Event(v1::AUDIT_ACTION_PLAN_CREATED, "gt", kSha2, "qa"),
  };
  repos_.down = {"gt"};
  EXPECT_EQ(ingester.IngestBatch(first).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(*store_->Cursor(), 0) << "nothing of a failed batch is recorded";
  EXPECT_EQ(store_->Counts()->pending, 0);
  repos_.down.clear();
  repos_.reads = 0;
  ASSERT_TRUE(ingester.IngestBatch(first).ok());
  EXPECT_EQ(repos_.reads, 2) << "one read per repository of the batch";
  EXPECT_EQ(*store_->Cursor(), 3);
  EXPECT_EQ(store_->Counts()->pending, 3);
  std::vector<v1::Event> overlapping = {first[1], first[2], Event(v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED, "gh", kSha1, "staging"),
                                        Event(v1::AUDIT_ACTION_DEPLOYMENT_FAILED, "gt", kSha2, "qa")};
  ASSERT_TRUE(ingester.IngestBatch(overlapping).ok());
  EXPECT_EQ(*store_->Cursor(), 5);
  EXPECT_EQ(store_->Counts()->pending, 5) << "the replayed events added nothing";
  std::vector<v1::Event> all = first;
  all.insert(all.end(), overlapping.begin() + 2, overlapping.end());
  ASSERT_TRUE(ingester.IngestBatch(all).ok());
  EXPECT_EQ(*store_->Cursor(), 5);
  DeliveryWorker worker(*store_, *sender_, {.batch = 10}, nullptr);
  Drain(worker);
  std::vector<Status> got = hosts_.Got();
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got[3].state, "success");
  EXPECT_EQ(got[4].state, "failure");
}

// In one batch, the events before an application change are matched
// against the subscriptions declared before it, those after against what
// its ferry.yaml now declares.
TEST_F(CommitStatusTest, InABatchAnApplicationChangeSyncsDeclaredSubscriptionsBeforeTheEventsAfterIt) {
  CountingApplications apps;
  DeclaredSubscriptionSync declared(*store_, apps);
  EventIngester ingester(*store_, nullptr, nullptr, &declared);
  v1::Application shop;
  shop.set_id("shop");
  apps.apps.push_back(shop);
  ASSERT_TRUE(ingester.Ingest(Event(v1::AUDIT_ACTION_DEPLOYMENT_FAILED, "plain", kSha1, "prod")).ok());
  EXPECT_EQ(apps.reads, 1);
  DeclareFailureWebhook(apps.apps[0]);
  std::vector<v1::Event> batch = {
      Event(v1::AUDIT_ACTION_DEPLOYMENT_FAILED, "plain", kSha1, "prod"),  // before the change: not matched
      Event(v1::AUDIT_ACTION_APPLICATION_UPDATED, "plain", kSha1, "prod"),
      Event(v1::AUDIT_ACTION_DEPLOYMENT_FAILED, "plain", kSha1, "prod"),  // after it: matched
      Event(v1::AUDIT_ACTION_DEPLOYMENT_FAILED, "plain", kSha1, "prod"),  // matched, no further read
  };
  ASSERT_TRUE(ingester.IngestBatch(batch).ok());
  EXPECT_EQ(apps.reads, 2);
  EXPECT_EQ(*store_->Cursor(), batch.back().sequence());
  auto rows = store_->ListDeliveries(v1::DELIVERY_STATE_PENDING, "", 0, 10);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].event_sequence(), batch[3].sequence());
  EXPECT_EQ((*rows)[1].event_sequence(), batch[2].sequence());
}

TEST_F(CommitStatusTest, RepoWatcherDownHoldsTheCursorUntilItAnswers) {
  EventIngester ingester(*store_, &repos_, nullptr);
  repos_.up = false;
  v1::Event e = Event(v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED, "gh", kSha1, "prod");
  EXPECT_EQ(ingester.Ingest(e).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(*store_->Cursor(), 0);
  repos_.up = true;
  ASSERT_TRUE(ingester.Ingest(e).ok());
  EXPECT_EQ(*store_->Cursor(), e.sequence());
  DeliveryWorker worker(*store_, *sender_, {}, nullptr);
  Drain(worker);
  ASSERT_EQ(hosts_.Got().size(), 1u);
  EXPECT_EQ(hosts_.Got()[0].state, "success");
}

TEST_F(CommitStatusTest, RefusedTokenFailsAtOnceAndSaysSoWithoutTheToken) {
  EventIngester ingester(*store_, &repos_, nullptr);
  ASSERT_TRUE(ingester.Ingest(Event(v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED, "bad-token", kSha1, "prod")).ok());
  DeliveryWorker worker(*store_, *sender_, {}, nullptr);
  Drain(worker);
  EXPECT_TRUE(hosts_.Got().empty());
  auto failed = store_->ListDeliveries(v1::DELIVERY_STATE_FAILED, "", 0, 10);
  ASSERT_TRUE(failed.ok());
  ASSERT_EQ(failed->size(), 1u);
  EXPECT_EQ((*failed)[0].attempts(), 1);
  EXPECT_NE((*failed)[0].last_error().find("github status API at http://127.0.0.1:"), std::string::npos);
  EXPECT_NE((*failed)[0].last_error().find("answered HTTP 401"), std::string::npos);
  EXPECT_EQ((*failed)[0].last_error().find("nope"), std::string::npos);
  EXPECT_EQ((*failed)[0].last_error().find("statuses/"), std::string::npos);  // host only, no path
}

}  // namespace
}  // namespace ferry::notifier
