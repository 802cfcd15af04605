// Pull-request previews over a REAL Git repository served by a real
// ferry-repo-watcher (ReadContent through GrpcRepoSource), with the catalog,
// render cache and previews in a real PostgreSQL (PostgresPlannerStore,
// PostgresPreviewStore) and the real kubectl kustomize. The pull request's
// head is pushed to a branch the repo-watcher mirrors; its events are fed
// through the ReviewEventSource seam.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/hmac.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/outbox/postgres_outbox_store.h"
#include "common/postgres/migrator.h"
#include "ferry/v1/repo_watcher.grpc.pb.h"
#include "planner_migrations.h"
#include "services/planner/grpc_repo_source.h"
#include "services/planner/postgres_planner_store.h"
#include "services/planner/preview/blast_radius.h"
#include "common/json/json.h"
#include "services/planner/preview/grpc_review_event_source.h"
#include "services/planner/preview/postgres_preview_store.h"
#include "services/planner/preview/preview_consumer.h"
#include "services/planner/preview/pull_request_previews.h"
#include "services/planner/preview/snapshot_repo_source.h"
#include "tests/planner/preview/preview_fakes.h"
#include "tests/support/fake_clock.h"
#include "tests/support/service_process.h"
#include "tests/support/test_database.h"

namespace ferry::planner {
namespace {

namespace fs = std::filesystem;

constexpr char kSecret[] = "preview-webhook-secret";

std::string HmacHex(const std::string& key, const std::string& body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(body.data()),
       body.size(), mac, &len);
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) absl::StrAppend(&hex, absl::Hex(mac[i], absl::kZeroPad2));
  return hex;
}

class PreviewGitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ferry::testing::MakeTempDir("ferry-preview-git");
    bare_ = dir_ + "/repo.git";
    work_ = dir_ + "/work";
    Git({"init", "-q", "--bare", "-b", "main", bare_});
    Git({"init", "-q", "-b", "main", work_});
    Write("bases/web/kustomization.yaml", "resources:\n- deployment.yaml\n");
    Write("bases/web/deployment.yaml", Deployment(1));
    Write("bases/worker/kustomization.yaml", "resources:\n- cm.yaml\n");
    Write("bases/worker/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: worker\n");
    for (const char* app : {"shop", "blog"})
      Write(absl::StrCat("apps/", app, "/kustomization.yaml"), absl::StrCat("namespace: ", app, "\nresources:\n- ../../bases/web\n"));
    Write("apps/jobs/kustomization.yaml", "namespace: jobs\nresources:\n- ../../bases/worker\n");
    Write("README.md", "monorepo\n");
    Commit("base");
    Git({"-C", work_, "push", "-q", bare_, "main"});
    base_sha_ = Head();

    std::ofstream(dir_ + "/webhook-secret") << kSecret << "\n";
    webhook_port_ = ferry::testing::FreePort();
    watcher_ = Start();
    rw_ = v1::RepoWatcher::NewStub(grpc::CreateChannel(watcher_->grpc_target(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    v1::CreateRepositoryRequest req;
    req.mutable_repository()->set_id("mono");
    req.mutable_repository()->set_url(bare_);
    req.mutable_repository()->add_branches("main");
    req.mutable_repository()->add_branches("pr/*");
    req.mutable_repository()->mutable_poll_interval()->set_seconds(3600);
    req.mutable_repository()->mutable_webhook_secret()->set_file(dir_ + "/webhook-secret");
    v1::Repository out;
    grpc::Status s = rw_->CreateRepository(&ctx, req, &out);
    ASSERT_TRUE(s.ok()) << s.error_message();
    Refresh();

    pool_ = db_.Pool(6);
    ASSERT_TRUE(postgres::Migrate(*pool_, PlannerMigrations()).ok());
    outbox_ = std::make_unique<outbox::PostgresOutboxStore>(pool_.get(), "planner", "planner");
    store_ = std::make_unique<PostgresPlannerStore>(pool_.get(), outbox_.get());
    previews_store_ = std::make_unique<PostgresPreviewStore>(pool_.get());
    ConfigChange change;
    for (const char* id : {"staging", "prod"}) {
      v1::Environment env;
      env.set_id(id);
      env.set_approval(std::string(id) == "prod" ? v1::APPROVAL_POLICY_MANUAL : v1::APPROVAL_POLICY_AUTO);
      change.create_environments.push_back(env);
    }
    for (const char* id : {"shop", "blog", "jobs"}) {
      v1::Application app;
      app.set_id(id);
      app.set_repository_id("mono");
      app.set_ref("main");
      app.set_path(absl::StrCat("apps/", id));
      app.set_render_method(v1::RENDER_METHOD_KUSTOMIZE);
      app.add_environment_ids("staging");
      app.add_environment_ids("prod");
      app.mutable_sync_policy()->set_automated(true);
      change.create_applications.push_back(app);
    }
    ASSERT_TRUE(store_->ApplyConfigChange(change).ok());

    RendererOptions options;
    options.helm_path = std::string(FERRY_TOOLS_BIN_DIR) + "/helm";
    options.kubectl_path = std::string(FERRY_TOOLS_BIN_DIR) + "/kubectl";
    repo_ = std::make_unique<GrpcRepoSource>(
        grpc::CreateChannel(watcher_->grpc_target(), grpc::InsecureChannelCredentials()));
    snapshot_ = std::make_unique<SnapshotRepoSource>(repo_.get());
    renderer_ = std::make_unique<Renderer>(snapshot_.get(), options);
    radius_ = std::make_unique<BlastRadius>(store_.get(), store_.get(), snapshot_.get(), renderer_.get(), nullptr, &clock_);
    previews_ = std::make_unique<PullRequestPreviews>(radius_.get(), previews_store_.get(), &commenter_);
  }

  std::unique_ptr<ferry::testing::ServiceProcess> Start() {
    auto p = ferry::testing::ServiceProcess::Start(
        "ferry-repo-watcher", {"--database-url=" + db_.url(), "--cache-dir=" + dir_ + "/cache",
                               "--audit-address=127.0.0.1:" + std::to_string(ferry::testing::FreePort()),
                               absl::StrCat("--webhook-address=127.0.0.1:", webhook_port_), "--secrets-dir=" + dir_},
        absl::Seconds(60));
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? std::move(*p) : nullptr;
  }

  void Git(std::vector<std::string> args) {
    std::vector<std::string> argv = {"git", "-c", "user.name=Dev", "-c", "user.email=dev@example.invalid"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = ferry::testing::RunCommand(argv, absl::Seconds(60));
    ASSERT_EQ(r.exit_code, 0) << absl::StrJoin(argv, " ") << ": " << r.output;
  }
  void Write(const std::string& rel, const std::string& text) {
    fs::path p = fs::path(work_) / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  void Commit(const std::string& message) {
    Git({"-C", work_, "add", "-A"});
    Git({"-C", work_, "commit", "-q", "-m", message});
  }
  std::string Head() {
    auto r = ferry::testing::RunCommand({"git", "-C", work_, "rev-parse", "HEAD"});
    return std::string(absl::StripAsciiWhitespace(r.output));
  }
  void Refresh() {
    grpc::ClientContext ctx;
    v1::RefreshRepositoryRequest req;
    req.set_repository_id("mono");
    req.set_wait(true);
    v1::RefreshRepositoryResponse out;
    grpc::Status s = rw_->RefreshRepository(&ctx, req, &out);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  static std::string Deployment(int replicas) {
    return absl::StrCat("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: ", replicas,
                        "\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n"
                        "    spec:\n      containers:\n      - {name: main, image: nginx}\n");
  }

  // Commits the work tree's changes on branch pr/<n> (from main) and
  // mirrors it; returns the event the repo-watcher would stream.
  v1::WatchReviewEventsResponse Push(int number) {
    Commit(absl::StrCat("pr ", number));
    Git({"-C", work_, "push", "-q", "-f", bare_, absl::StrCat("HEAD:refs/heads/pr/", number)});
    Refresh();
    v1::WatchReviewEventsResponse event;
    v1::PullRequest* pr = event.mutable_pull_request();
    pr->set_repository_id("mono");
    pr->set_number(number);
    pr->set_head_ref(absl::StrCat("refs/heads/pr/", number));
    pr->set_head_sha(Head());
    pr->set_base_ref("refs/heads/main");
    pr->set_base_sha(base_sha_);
    pr->set_state(v1::PULL_REQUEST_STATE_OPEN);
    return event;
  }

  std::set<std::string> Pairs(int number) {
    v1::GetPullRequestPreviewRequest req;
    req.set_repository_id("mono");
    req.set_number(number);
    absl::StatusOr<v1::PullRequestPreview> p = previews_->Get(req);
    std::set<std::string> out;
    if (!p.ok()) {
      out.insert(p.status().ToString());
      return out;
    }
    for (const auto& e : p->entries()) out.insert(absl::StrCat(e.application_id(), "/", e.environment_id()));
    return out;
  }

  // POSTs GitHub's documented pull_request payload (FERRY_WEBHOOK_TESTDATA),
  // made ours, signed as GitHub signs it, to the repo-watcher's webhook.
  int SendPull(const std::string& action, int number, const std::string& head_sha, bool merged = false) {
    std::ifstream in(std::string(FERRY_WEBHOOK_TESTDATA) + "/github/pull_request_" + action + ".json");
    std::stringstream ss;
    ss << in.rdbuf();
    absl::StatusOr<nlohmann::json> j = ParseJson(ss.str());
    EXPECT_TRUE(j.ok()) << j.status();
    if (!j.ok()) return 0;
    (*j)["action"] = action;
    (*j)["number"] = number;
    (*j)["pull_request"]["number"] = number;
    (*j)["pull_request"]["head"]["sha"] = head_sha;
    (*j)["pull_request"]["base"]["ref"] = "main";
    if (action == "closed") (*j)["pull_request"]["merged"] = merged;
    const std::string body = DumpJsonLossy(*j);
    httplib::Client hook("127.0.0.1", webhook_port_);
    hook.set_read_timeout(60, 0);
    httplib::Headers h = {{"X-GitHub-Event", "pull_request"},
                          {"X-Hub-Signature-256", "sha256=" + HmacHex(kSecret, body)},
                          {"X-GitHub-Delivery", absl::StrCat("d-", ++deliveries_)}};
    httplib::Result res = hook.Post("/webhooks/github/mono", h, body, "application/json");
    EXPECT_TRUE(res) << "webhook POST failed";
    if (!res) return 0;
    EXPECT_LT(res->status, 300) << res->body << watcher_->Log();
    return res->status;
  }

  static bool WaitFor(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(60)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (done()) return true;
      absl::SleepFor(absl::Milliseconds(100));
    }
    return done();
  }

  ferry::testing::TestDatabase db_;
  int webhook_port_ = 0;
  int deliveries_ = 0;
  std::string dir_, bare_, work_, base_sha_;
  std::unique_ptr<ferry::testing::ServiceProcess> watcher_;
  std::unique_ptr<v1::RepoWatcher::Stub> rw_;
  std::unique_ptr<postgres::ConnectionPool> pool_;
  std::unique_ptr<outbox::PostgresOutboxStore> outbox_;
  std::unique_ptr<PostgresPlannerStore> store_;
  std::unique_ptr<PostgresPreviewStore> previews_store_;
  ferry::testing::FakeClock clock_;
  testing::FakeCommenter commenter_;
  std::unique_ptr<GrpcRepoSource> repo_;
  std::unique_ptr<SnapshotRepoSource> snapshot_;
  std::unique_ptr<Renderer> renderer_;
  std::unique_ptr<BlastRadius> radius_;
  std::unique_ptr<PullRequestPreviews> previews_;
};

TEST_F(PreviewGitTest, SharedBasePrListsItsAppsUnrelatedPrNonePushUpdatesCloseRemoves) {
  // PR 1 touches the shared web base: shop and blog, both environments.
  Git({"-C", work_, "checkout", "-q", "-b", "pr1"});
  Write("bases/web/deployment.yaml", Deployment(4));
  v1::WatchReviewEventsResponse pr1 = Push(1);
  ASSERT_TRUE(previews_->HandleEvent(pr1).ok());
  EXPECT_EQ(Pairs(1), (std::set<std::string>{"blog/prod", "blog/staging", "shop/prod", "shop/staging"}));

  // PR 2 (from main) touches only the README: no entry.
  Git({"-C", work_, "checkout", "-q", "main"});
  Git({"-C", work_, "checkout", "-q", "-b", "pr2"});
  Write("README.md", "monorepo, documented\n");
  ASSERT_TRUE(previews_->HandleEvent(Push(2)).ok());
  EXPECT_EQ(Pairs(2), (std::set<std::string>{}));

  // A push to PR 1 reverts the base and changes the worker base instead.
  Git({"-C", work_, "checkout", "-q", "pr1"});
  Write("bases/web/deployment.yaml", Deployment(1));
  Write("bases/worker/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: worker\ndata:\n  a: b\n");
  v1::WatchReviewEventsResponse pushed = Push(1);
  ASSERT_NE(pushed.pull_request().head_sha(), pr1.pull_request().head_sha());
  ASSERT_TRUE(previews_->HandleEvent(pushed).ok());
  EXPECT_EQ(Pairs(1), (std::set<std::string>{"jobs/prod", "jobs/staging"}));
  ASSERT_EQ(commenter_.calls().size(), 3u);
  EXPECT_EQ(commenter_.calls()[2].comment_id, "c-1");  // the same comment, edited

  // Closing removes it; PR 2 stays.
  v1::WatchReviewEventsResponse closed = pushed;
  closed.mutable_pull_request()->set_state(v1::PULL_REQUEST_STATE_CLOSED);
  ASSERT_TRUE(previews_->HandleEvent(closed).ok());
  EXPECT_EQ(Pairs(1), (std::set<std::string>{"NOT_FOUND: no preview of pull request 1 of repository \"mono\" "
                                             "(unknown, closed, or not computed yet)"}));
  v1::ListPullRequestPreviewsRequest list;
  list.set_repository_id("mono");
  absl::StatusOr<v1::ListPullRequestPreviewsResponse> listed = previews_->List(list);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->previews_size(), 1);
  EXPECT_EQ(listed->previews(0).number(), 2);
}

// The whole path: signed GitHub pull_request webhooks to the real
// repo-watcher, which fetches refs/pull/N/head on demand and streams review
// events; the planner's PreviewConsumer follows WatchReviewEvents (real gRPC)
// and keeps the previews; opened, synchronize (a push), closed.
TEST_F(PreviewGitTest, WebhookOpenedSynchronizedClosedKeepThePreviewUpToDate) {
  GrpcReviewEventSource source(grpc::CreateChannel(watcher_->grpc_target(), grpc::InsecureChannelCredentials()));
  PreviewConsumer consumer(&source, store_.get(), previews_.get());
  consumer.Start();

  // Opened: the head (on the host's refs/pull/9/head) touches the web base.
  Git({"-C", work_, "checkout", "-q", "-b", "feature"});
  Write("bases/web/deployment.yaml", Deployment(5));
  Commit("scale web");
  Git({"-C", work_, "push", "-q", bare_, "HEAD:refs/pull/9/head"});
  const std::string head1 = Head();
  ASSERT_EQ(SendPull("opened", 9, head1), 200);
  ASSERT_TRUE(WaitFor([&] {
    return Pairs(9) == std::set<std::string>{"blog/prod", "blog/staging", "shop/prod", "shop/staging"};
  })) << absl::StrJoin(Pairs(9), ", ") << watcher_->Log();

  // A push to the pull request: only the worker base changes now.
  Write("bases/web/deployment.yaml", Deployment(1));
  Write("bases/worker/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: worker\ndata:\n  q: r\n");
  Commit("move the change");
  Git({"-C", work_, "push", "-q", "-f", bare_, "HEAD:refs/pull/9/head"});
  const std::string head2 = Head();
  ASSERT_EQ(SendPull("synchronize", 9, head2), 200);
  ASSERT_TRUE(WaitFor([&] { return Pairs(9) == std::set<std::string>{"jobs/prod", "jobs/staging"}; }))
      << absl::StrJoin(Pairs(9), ", ") << watcher_->Log();

  // Merged: removed.
  ASSERT_EQ(SendPull("closed", 9, head2, /*merged=*/true), 200);
  ASSERT_TRUE(WaitFor([&] { return Pairs(9).size() == 1 && absl::StrContains(*Pairs(9).begin(), "NOT_FOUND"); }))
      << absl::StrJoin(Pairs(9), ", ");
  consumer.Stop();
  // The cursor is durable: the planner resumes after the last event handled.
  absl::StatusOr<std::string> cursor = store_->GetCursor(PreviewConsumer::kCursorName);
  ASSERT_TRUE(cursor.ok());
  EXPECT_FALSE(cursor->empty());
}

}  // namespace
}  // namespace ferry::planner
