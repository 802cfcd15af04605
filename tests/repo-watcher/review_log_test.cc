// ReviewLog over PostgresReviewStore against a real throwaway PostgreSQL:
// check reports validated field by field and audited, the latest report per
// (repository, sha, name) wins, pull requests with optimistic concurrency,
// and the WatchReviewEvents stream resumed from a cursor and woken live.

#include "services/repo-watcher/review_log.h"

#include <gtest/gtest.h>

#include <thread>

#include <pqxx/pqxx>

#include "absl/synchronization/notification.h"
#include "common/concurrency/mutex.h"
#include "common/outbox/postgres_outbox_store.h"
#include "common/postgres/migrator.h"
#include "repo_watcher_migrations.h"
#include "services/repo-watcher/postgres_repository_store.h"
#include "services/repo-watcher/postgres_review_store.h"
#include "services/repo-watcher/repo_poller.h"
#include "tests/support/test_database.h"

namespace ferry::repo_watcher {
namespace {

const std::string kSha1 = "0123456789abcdef0123456789abcdef01234567";
const std::string kSha2 = "89abcdef0123456789abcdef0123456789abcdef";

class ReviewLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pool_ = db_.Pool(6);
    ASSERT_TRUE(postgres::Migrate(*pool_, RepoWatcherMigrations()).ok());
    outbox_ = std::make_unique<outbox::PostgresOutboxStore>(pool_.get(), "repo_watcher", "repo-watcher");
    repos_ = std::make_unique<PostgresRepositoryStore>(pool_.get(), outbox_.get());
    store_ = std::make_unique<PostgresReviewStore>(pool_.get(), outbox_.get());
    log_ = std::make_unique<ReviewLog>(store_.get(), &notifier_);
    for (const char* id : {"apps", "infra"}) {
      v1::Repository r;
      r.set_id(id);
      r.set_url("/srv/apps.git");
      ASSERT_TRUE(repos_->Create(r, MakeEvent(v1::AUDIT_ACTION_REPOSITORY_REGISTERED, id, "test")).ok());
    }
    ci_.set_kind(v1::ACTOR_KIND_USER);
    ci_.set_id("ci-bot");
  }

  static v1::ReportCheckRequest Report(const std::string& name, v1::CheckState state,
                                       const std::string& sha = kSha1, const std::string& repo = "apps") {
    v1::ReportCheckRequest r;
    r.set_repository_id(repo);
    r.set_sha(sha);
    r.set_name(name);
    r.set_state(state);
    r.set_url("https://ci.example.com/runs/1");
    r.set_description("unit tests");
    return r;
  }

  std::vector<v1::Event> Audit(v1::AuditAction action) {
    std::vector<v1::Event> out;
    EXPECT_TRUE(pool_->RunInTransaction([&](pqxx::work& txn) {
                       for (const auto& row : txn.exec("SELECT event FROM repo_watcher.outbox ORDER BY id")) {
                         v1::Event e;
                         e.ParseFromString(pqxx::binarystring(row[0]).str());
                         if (e.action() == action) out.push_back(e);
                       }
                       return absl::OkStatus();
                     }).ok());
    return out;
  }

  testing::TestDatabase db_;
  std::unique_ptr<postgres::ConnectionPool> pool_;
  std::unique_ptr<outbox::PostgresOutboxStore> outbox_;
  std::unique_ptr<PostgresRepositoryStore> repos_;
  std::unique_ptr<PostgresReviewStore> store_;
  RevisionNotifier notifier_;
  std::unique_ptr<ReviewLog> log_;
  v1::Actor ci_;
};

TEST_F(ReviewLogTest, TheLatestReportOfEachCheckWinsAndEachIsAudited) {
  ASSERT_TRUE(log_->ReportCheck(Report("build", v1::CHECK_STATE_PENDING), ci_, "api").ok());
  ASSERT_TRUE(log_->ReportCheck(Report("lint", v1::CHECK_STATE_FAILURE), ci_, "api").ok());
  absl::StatusOr<v1::CommitCheck> done = log_->ReportCheck(Report("build", v1::CHECK_STATE_SUCCESS), ci_, "github");
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->source(), "github");
  EXPECT_EQ(done->reported_by().id(), "ci-bot");
  EXPECT_TRUE(done->has_report_time());
  ASSERT_TRUE(log_->ReportCheck(Report("build", v1::CHECK_STATE_FAILURE, kSha2), ci_, "api").ok());

  v1::ListChecksRequest req;
  req.set_repository_id("apps");
  req.set_sha(kSha1);
  absl::StatusOr<v1::ListChecksResponse> list = log_->ListChecks(req);
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->checks_size(), 2);
  EXPECT_EQ(list->checks(0).name(), "build");
  EXPECT_EQ(list->checks(0).state(), v1::CHECK_STATE_SUCCESS);
  EXPECT_EQ(list->checks(0).url(), "https://ci.example.com/runs/1");
  EXPECT_EQ(list->checks(1).name(), "lint");
  EXPECT_EQ(list->checks(1).state(), v1::CHECK_STATE_FAILURE);
  req.set_repository_id("infra");
  EXPECT_EQ(log_->ListChecks(req)->checks_size(), 0) << "checks are per repository";

  std::vector<v1::Event> audited = Audit(v1::AUDIT_ACTION_CHECK_REPORTED);
  ASSERT_EQ(audited.size(), 4u);
  const auto& f = audited[2].details().fields();
  EXPECT_EQ(audited[2].actor().id(), "ci-bot");
  EXPECT_EQ(audited[2].subject().repository_id(), "apps");
  EXPECT_EQ(f.at("check").string_value(), "build");
  EXPECT_EQ(f.at("state").string_value(), "success");
  EXPECT_EQ(f.at("url").string_value(), "https://ci.example.com/runs/1");
  EXPECT_EQ(f.at("sha").string_value(), kSha1);
  EXPECT_EQ(f.at("source").string_value(), "github");
}

TEST_F(ReviewLogTest, BadReportsAreRefusedNamingTheFieldAuditedAndNothingIsRecorded) {
  struct Case {
    std::function<void(v1::ReportCheckRequest&)> spoil;
    std::string field;
  };
  const std::vector<Case> cases = {
      {[](auto& r) { r.set_repository_id("Not_An_Id"); }, "repository_id: "},
      {[](auto& r) { r.set_sha("0123abc"); }, "sha: "},
      {[](auto& r) { r.set_sha(std::string(40, 'G')); }, "sha: "},
      {[](auto& r) { r.set_sha("0123456789ABCDEF0123456789ABCDEF01234567"); }, "sha: "},
      {[](auto& r) { r.set_name(""); }, "name: "},
      {[](auto& r) { r.set_name(std::string(256, 'n')); }, "name: "},
      {[](auto& r) { r.set_name("build\ninjected"); }, "name: "},
      {[](auto& r) { r.set_name(std::string("bad\xff", 4)); }, "name: "},
      {[](auto& r) { r.set_state(v1::CHECK_STATE_UNSPECIFIED); }, "state: "},
      {[](auto& r) { r.set_state(static_cast<v1::CheckState>(42)); }, "state: "},
      {[](auto& r) { r.set_url("javascript:alert(1)"); }, "url: "},
      {[](auto& r) { r.set_url("ftp://ci.example.com/x"); }, "url: "},
      {[](auto& r) { r.set_url("https://ci.example.com/a b"); }, "url: "},
      {[](auto& r) { r.set_url("https:///path"); }, "url: "},
      {[](auto& r) { r.set_url("https://ci.example.com/" + std::string(2100, 'x')); }, "url: "},
      {[](auto& r) { r.set_description(std::string(1025, 'd')); }, "description: "},
  };
  for (const Case& c : cases) {
    v1::ReportCheckRequest r = Report("build", v1::CHECK_STATE_SUCCESS);
    c.spoil(r);
    absl::StatusOr<v1::CommitCheck> got = log_->ReportCheck(r, ci_, "api");
    EXPECT_TRUE(absl::IsInvalidArgument(got.status())) << c.field << got.status();
    EXPECT_EQ(got.status().message().rfind(c.field, 0), 0u) << got.status();
  }
  absl::StatusOr<v1::CommitCheck> unknown =
      log_->ReportCheck(Report("build", v1::CHECK_STATE_SUCCESS, kSha1, "nope"), ci_, "api");
  EXPECT_TRUE(absl::IsNotFound(unknown.status())) << unknown.status();
  EXPECT_EQ(unknown.status().message().rfind("repository_id: ", 0), 0u) << unknown.status();
  // An http URL is fine (internal CI), and so is none.
  v1::ReportCheckRequest plain = Report("build", v1::CHECK_STATE_SUCCESS);
  plain.set_url("http://jenkins.internal:8080/job/1");
  EXPECT_TRUE(log_->ReportCheck(plain, ci_, "api").ok());
  plain.set_url("");
  EXPECT_TRUE(log_->ReportCheck(plain, ci_, "api").ok());

  std::vector<v1::Event> audited = Audit(v1::AUDIT_ACTION_CHECK_REPORTED);
  ASSERT_EQ(audited.size(), cases.size() + 1 + 2);
  int rejected = 0;
  for (const v1::Event& e : audited) {
    if (e.details().fields().at("outcome").string_value() == "rejected") ++rejected;
  }
  EXPECT_EQ(rejected, static_cast<int>(cases.size()) + 1);
  auto events = store_->ReviewEventsAfter(0, {}, 100);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->size(), 2u) << "only the two valid reports were logged";
}

TEST_F(ReviewLogTest, PullRequestsChangeOnlyFromWhatWasReadAndListOpenOnesByDefault) {
  v1::PullRequest pr;
  pr.set_repository_id("apps");
  pr.set_number(42);
  pr.set_state(v1::PULL_REQUEST_STATE_OPEN);
  pr.set_head_ref("refs/pull/42/head");
  pr.set_head_sha(kSha1);
  pr.set_base_ref("refs/heads/main");
  absl::StatusOr<v1::PullRequest> opened =
      log_->RecordPullRequest(pr, std::nullopt, v1::AUDIT_ACTION_PULL_REQUEST_OPENED, ci_, "opened");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_TRUE(absl::IsAborted(
      log_->RecordPullRequest(pr, std::nullopt, v1::AUDIT_ACTION_PULL_REQUEST_OPENED, ci_, "again").status()));
  v1::PullRequest moved = *opened;
  moved.set_head_sha(kSha2);
  ASSERT_TRUE(log_->RecordPullRequest(moved, *opened, v1::AUDIT_ACTION_PULL_REQUEST_UPDATED, ci_, "moved").ok());
  EXPECT_TRUE(absl::IsAborted(
      log_->RecordPullRequest(moved, *opened, v1::AUDIT_ACTION_PULL_REQUEST_UPDATED, ci_, "stale").status()))
      << "a write from a stale read must not win";

  v1::ListPullRequestsRequest all;
  ASSERT_EQ(log_->ListPullRequests(all)->pull_requests_size(), 1);
  EXPECT_EQ(log_->ListPullRequests(all)->pull_requests(0).head_sha(), kSha2);
  absl::StatusOr<std::optional<v1::PullRequest>> now = log_->GetPullRequest("apps", 42);
  ASSERT_TRUE(now.ok() && now->has_value());
  v1::PullRequest closed = **now;
  closed.set_state(v1::PULL_REQUEST_STATE_MERGED);
  ASSERT_TRUE(log_->RecordPullRequest(closed, **now, v1::AUDIT_ACTION_PULL_REQUEST_CLOSED, ci_, "merged").ok());
  EXPECT_EQ(log_->ListPullRequests(all)->pull_requests_size(), 0);
  all.set_include_closed(true);
  ASSERT_EQ(log_->ListPullRequests(all)->pull_requests_size(), 1);
  EXPECT_EQ(log_->ListPullRequests(all)->pull_requests(0).state(), v1::PULL_REQUEST_STATE_MERGED);
  EXPECT_EQ(Audit(v1::AUDIT_ACTION_PULL_REQUEST_OPENED).size(), 1u);
  EXPECT_EQ(Audit(v1::AUDIT_ACTION_PULL_REQUEST_UPDATED).size(), 1u);
  EXPECT_EQ(Audit(v1::AUDIT_ACTION_PULL_REQUEST_CLOSED).size(), 1u);
}

TEST_F(ReviewLogTest, WatchReplaysFromTheCursorFiltersByRepositoryAndWakesOnANewEvent) {
  ASSERT_TRUE(log_->ReportCheck(Report("a", v1::CHECK_STATE_PENDING), ci_, "api").ok());
  ASSERT_TRUE(log_->ReportCheck(Report("b", v1::CHECK_STATE_PENDING, kSha1, "infra"), ci_, "api").ok());
  ASSERT_TRUE(log_->ReportCheck(Report("c", v1::CHECK_STATE_PENDING), ci_, "api").ok());
  auto all = store_->ReviewEventsAfter(0, {}, 100);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);

  Mutex mu;
  std::vector<v1::WatchReviewEventsResponse> got;
  absl::Notification saw_live;
  bool stop = false;
  v1::WatchReviewEventsRequest req;
  req.set_cursor((*all)[0].cursor());
  req.add_repository_ids("apps");
  std::thread watcher([&] {
    absl::Status ended = log_->Watch(
        req,
        [&](const v1::WatchReviewEventsResponse& e) {
          MutexLock lock(&mu);
          got.push_back(e);
          if (e.check().name() == "live") saw_live.Notify();
          return true;
        },
        [&] {
          MutexLock lock(&mu);
          return stop;
        });
    EXPECT_TRUE(ended.ok()) << ended;
  });
  ASSERT_TRUE(log_->ReportCheck(Report("live", v1::CHECK_STATE_SUCCESS), ci_, "api").ok());
  // Measured from the report's return (its commit and Notify): the stream
  // wakes every 500 ms to see whether its client left, and reads the store
  // again without a signal only every 10 s.
  const absl::Time t0 = absl::Now();
  ASSERT_TRUE(saw_live.WaitForNotificationWithTimeout(absl::Seconds(10)));
  const absl::Duration latency = absl::Now() - t0;
  {
    MutexLock lock(&mu);
    stop = true;
  }
  notifier_.Notify();
  watcher.join();
  ASSERT_EQ(got.size(), 2u) << "after the first event, only apps's: c, then live";
  EXPECT_EQ(got[0].check().name(), "c");
  EXPECT_EQ(got[1].check().name(), "live");
  EXPECT_LT(latency, absl::Milliseconds(400)) << "woken by the notifier, not by a tick";

  v1::WatchReviewEventsRequest bad;
  bad.set_cursor("x1");
  EXPECT_TRUE(absl::IsInvalidArgument(log_->Watch(bad, nullptr, [] { return true; })));
  bad.set_cursor("");
  bad.add_repository_ids("Bad Id");
  EXPECT_TRUE(absl::IsInvalidArgument(log_->Watch(bad, nullptr, [] { return true; })));
}

}  // namespace
}  // namespace ferry::repo_watcher
