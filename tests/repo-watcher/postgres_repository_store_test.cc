// PostgresRepositoryStore against a real throwaway PostgreSQL.

#include "services/repo-watcher/postgres_repository_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/outbox/postgres_outbox_store.h"
#include "common/postgres/migrator.h"
#include "repo_watcher_migrations.h"
#include "services/repo-watcher/repo_poller.h"
#include "tests/support/test_database.h"

namespace ferry::repo_watcher {
namespace {

class PostgresRepositoryStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pool_ = db_.Pool(6);
    ASSERT_TRUE(postgres::Migrate(*pool_, RepoWatcherMigrations()).ok());
    outbox_ = std::make_unique<outbox::PostgresOutboxStore>(pool_.get(), "repo_watcher", "repo-watcher");
    store_ = std::make_unique<PostgresRepositoryStore>(pool_.get(), outbox_.get());
    v1::Repository r;
    r.set_id("apps");
    r.set_url("/srv/apps.git");
    ASSERT_TRUE(store_->Create(r, Event(v1::AUDIT_ACTION_REPOSITORY_REGISTERED)).ok());
  }
  static v1::Event Event(v1::AuditAction action) { return MakeEvent(action, "apps", "test"); }
  static v1::Revision Rev(const std::string& ref, const std::string& sha, bool rejected = false) {
    v1::Revision r;
    r.set_repository_id("apps");
    r.set_ref(ref);
    r.set_sha(sha);
    r.set_rejected(rejected);
    return r;
  }

  testing::TestDatabase db_;
  std::unique_ptr<postgres::ConnectionPool> pool_;
  std::unique_ptr<outbox::PostgresOutboxStore> outbox_;
  std::unique_ptr<PostgresRepositoryStore> store_;
};

TEST_F(PostgresRepositoryStoreTest, RepositoryLockIsExclusiveAcrossConnections) {
  absl::Notification held, release;
  std::thread holder([&] {
    auto got = store_->WithRepositoryLock("apps", [&] {
      held.Notify();
      release.WaitForNotification();
    });
    EXPECT_TRUE(got.ok() && *got);
  });
  held.WaitForNotification();
  bool ran = false;
  auto second = store_->WithRepositoryLock("apps", [&] { ran = true; });
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(*second);
  EXPECT_FALSE(ran);
  auto other_repo = store_->WithRepositoryLock("other", [] {});
  EXPECT_TRUE(other_repo.ok() && *other_repo) << "locks are per repository";
  release.Notify();
  holder.join();
  auto third = store_->WithRepositoryLock("apps", [&] { ran = true; });
  EXPECT_TRUE(third.ok() && *third);
  EXPECT_TRUE(ran);
}

TEST_F(PostgresRepositoryStoreTest, RefMovesAreCompareAndSetAndRejectedTipsKeepTheAcceptedSha) {
  const std::string a(40, 'a'), b(40, 'b'), c(40, 'c');
  auto r1 = store_->RecordRevision(Rev("refs/heads/main", a), "", Event(v1::AUDIT_ACTION_REVISION_DETECTED));
  ASSERT_TRUE(r1.ok()) << r1.status();
  // A second replica that saw the same move loses the race.
  auto dup = store_->RecordRevision(Rev("refs/heads/main", a), "", Event(v1::AUDIT_ACTION_REVISION_DETECTED));
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kAborted);
  auto stale = store_->RecordRevision(Rev("refs/heads/main", b), c, Event(v1::AUDIT_ACTION_REVISION_DETECTED));
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted);
  auto r2 = store_->RecordRevision(Rev("refs/heads/main", b, /*rejected=*/true), a,
                                   Event(v1::AUDIT_ACTION_SIGNATURE_REJECTED));
  ASSERT_TRUE(r2.ok());
  auto status = store_->GetStatus("apps");
  ASSERT_TRUE(status.ok());
  // Times never recorded stay unset (not 1970-01-01).
  EXPECT_FALSE(status->has_last_error_time()) << status->DebugString();
  ASSERT_EQ(status->refs_size(), 1);
  EXPECT_EQ(status->refs(0).sha(), b);
  EXPECT_EQ(status->refs(0).accepted_sha(), a);
  v1::Revision gone = Rev("refs/heads/main", "");
  gone.set_ref_deleted(true);
  ASSERT_TRUE(store_->RecordRevision(gone, b, Event(v1::AUDIT_ACTION_REVISION_DETECTED)).ok());
  EXPECT_EQ(store_->GetStatus("apps")->refs_size(), 0);
  EXPECT_EQ(*outbox_->Backlog(), 4) << "registration + three revisions, none for the losers";
}

TEST_F(PostgresRepositoryStoreTest, CursorsIncreaseAndFiltersApply) {
  std::vector<std::string> shas;
  std::string prev;
  for (int i = 0; i < 5; ++i) {
    std::string sha(40, static_cast<char>('0' + i));
    auto r = store_->RecordRevision(Rev("refs/heads/main", sha, /*rejected=*/i == 2), prev,
                                    Event(v1::AUDIT_ACTION_REVISION_DETECTED));
    ASSERT_TRUE(r.ok()) << r.status();
    shas.push_back(r->cursor());
    prev = sha;
  }
  for (size_t i = 1; i < shas.size(); ++i) EXPECT_LT(std::stoll(shas[i - 1]), std::stoll(shas[i]));
  auto accepted = store_->RevisionsAfter(0, {}, false, 100);
  ASSERT_TRUE(accepted.ok());
  EXPECT_EQ(accepted->size(), 4u);
  auto after = store_->RevisionsAfter(std::stoll(shas[1]), {"apps"}, true, 100);
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 3u);
  EXPECT_EQ((*after)[0].cursor(), shas[2]);
  EXPECT_TRUE((*after)[0].rejected());
  EXPECT_TRUE(store_->RevisionsAfter(0, {"other"}, true, 100)->empty());

  RevisionQuery q;
  q.repository_id = "apps";
  q.include_rejected = true;
  q.limit = 2;
  auto newest = store_->ListRevisions(q);
  ASSERT_TRUE(newest.ok());
  ASSERT_EQ(newest->size(), 2u);
  EXPECT_EQ((*newest)[0].cursor(), shas[4]);
  q.after_cursor = std::stoll((*newest)[1].cursor());
  auto older = store_->ListRevisions(q);
  ASSERT_EQ(older->size(), 2u);
  EXPECT_EQ((*older)[0].cursor(), shas[2]);
  // A position beyond 2^31 is a position (it used to be an int4 parameter).
  q.after_cursor = 3000000000;
  auto far = store_->ListRevisions(q);
  ASSERT_TRUE(far.ok()) << far.status();
  EXPECT_EQ(far->size(), 2u);
}

// An update replaces the spec only if it is still what the updater read,
// so that two updates of different fields cannot lose one of them.
TEST_F(PostgresRepositoryStoreTest, UpdateReplacesOnlyTheSpecItWasMergedInto) {
  absl::StatusOr<v1::Repository> read = store_->Get("apps");
  ASSERT_TRUE(read.ok()) << read.status();
  v1::Repository first = *read;
  first.add_branches("main");
  ASSERT_TRUE(store_->Update(first, *read, Event(v1::AUDIT_ACTION_REPOSITORY_UPDATED)).ok());
  v1::Repository second = *read;  // merged into what is no longer stored
  second.mutable_poll_interval()->set_seconds(30);
  absl::StatusOr<v1::Repository> stale = store_->Update(second, *read, Event(v1::AUDIT_ACTION_REPOSITORY_UPDATED));
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted) << stale.status();
  absl::StatusOr<v1::Repository> now = store_->Get("apps");
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->branches_size(), 1);
  EXPECT_FALSE(now->has_poll_interval());
  // Merged again into what is stored now, it goes through.
  second = *now;
  second.mutable_poll_interval()->set_seconds(30);
  ASSERT_TRUE(store_->Update(second, *now, Event(v1::AUDIT_ACTION_REPOSITORY_UPDATED)).ok());
  v1::Repository missing = *now;
  missing.set_id("nope");
  EXPECT_EQ(store_->Update(missing, missing, Event(v1::AUDIT_ACTION_REPOSITORY_UPDATED)).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(PostgresRepositoryStoreTest, DeletingKeepsRevisionsForHistory) {
  ASSERT_TRUE(store_->RecordRevision(Rev("refs/heads/main", std::string(40, 'a')), "",
                                     Event(v1::AUDIT_ACTION_REVISION_DETECTED)).ok());
  ASSERT_TRUE(store_->Delete("apps", Event(v1::AUDIT_ACTION_REPOSITORY_DELETED)).ok());
  EXPECT_EQ(store_->Get("apps").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetStatus("apps").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->RevisionsAfter(0, {"apps"}, true, 10)->size(), 1u);
  EXPECT_EQ(store_->Delete("apps", Event(v1::AUDIT_ACTION_REPOSITORY_DELETED)).code(), absl::StatusCode::kNotFound);
  // A poll that ends after the deletion learns it from its record (the
  // poller then removes the mirror it may have recreated).
  CheckRecord late{"apps", absl::Now(), std::nullopt, "", 0, absl::Now() + absl::Minutes(1)};
  EXPECT_EQ(store_->RecordCheck(late, std::nullopt).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->RecordChecks({late}).ok());  // skipped, with nothing to write
}

// What a poll reads in one statement is what Get and GetStatus return.
TEST_F(PostgresRepositoryStoreTest, ReadForPollIsGetAndGetStatusAtOnce) {
  absl::StatusOr<PollState> none = store_->ReadForPoll("apps");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->repository.DebugString(), store_->Get("apps")->DebugString());
  EXPECT_EQ(none->status.DebugString(), store_->GetStatus("apps")->DebugString());
  EXPECT_EQ(none->status.refs_size(), 0);
  ASSERT_TRUE(store_->RecordRevision(Rev("refs/heads/main", std::string(40, 'a')), "",
                                     Event(v1::AUDIT_ACTION_REVISION_DETECTED)).ok());
  ASSERT_TRUE(store_->RecordRevision(Rev("refs/heads/dev", std::string(40, 'b'), /*rejected=*/true), "",
                                     Event(v1::AUDIT_ACTION_SIGNATURE_REJECTED)).ok());
  ASSERT_TRUE(store_->RecordCheck({"apps", absl::FromUnixSeconds(1'800'000'000), absl::FromUnixSeconds(1'800'000'001),
                                   "boom", 2, absl::FromUnixSeconds(1'800'000'060)},
                                  std::nullopt)
                  .ok());
  absl::StatusOr<PollState> both = store_->ReadForPoll("apps");
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_EQ(both->repository.DebugString(), store_->Get("apps")->DebugString());
  EXPECT_EQ(both->status.DebugString(), store_->GetStatus("apps")->DebugString());
  ASSERT_EQ(both->status.refs_size(), 2);
  EXPECT_EQ(both->status.refs(0).ref(), "refs/heads/dev");
  EXPECT_EQ(both->status.refs(0).accepted_sha(), "");
  EXPECT_EQ(both->status.consecutive_failures(), 2);
  EXPECT_EQ(store_->ReadForPoll("nope").status().code(), absl::StatusCode::kNotFound);
}

// The checks falling due together read their repositories in one statement
// (issue #23): each as ReadForPoll reads it; one not found is left out.
TEST_F(PostgresRepositoryStoreTest, ReadForPollManyIsReadForPollOfEach) {
  v1::Repository other;
  other.set_id("other");
  other.set_url("/srv/other.git");
  ASSERT_TRUE(store_->Create(other, Event(v1::AUDIT_ACTION_REPOSITORY_REGISTERED)).ok());
  ASSERT_TRUE(store_->RecordRevision(Rev("refs/heads/main", std::string(40, 'a')), "",
                                     Event(v1::AUDIT_ACTION_REVISION_DETECTED)).ok());
  ASSERT_TRUE(store_->RecordRevision(Rev("refs/heads/dev", std::string(40, 'b'), /*rejected=*/true), "",
                                     Event(v1::AUDIT_ACTION_SIGNATURE_REJECTED)).ok());
  ASSERT_TRUE(store_->RecordCheck({"apps", absl::FromUnixSeconds(1'800'000'000), absl::FromUnixSeconds(1'800'000'001),
                                   "boom", 2, absl::FromUnixSeconds(1'800'000'060)},
                                  std::nullopt)
                  .ok());
  EXPECT_TRUE(store_->ReadForPollMany({})->empty());
  absl::StatusOr<std::map<std::string, PollState>> many = store_->ReadForPollMany({"other", "nope", "apps"});
  ASSERT_TRUE(many.ok()) << many.status();
  ASSERT_EQ(many->size(), 2u);
  for (const char* id : {"apps", "other"}) {
    absl::StatusOr<PollState> one = store_->ReadForPoll(id);
    ASSERT_TRUE(one.ok()) << one.status();
    ASSERT_EQ(many->count(id), 1u) << id;
    EXPECT_EQ(many->at(id).repository.DebugString(), one->repository.DebugString()) << id;
    EXPECT_EQ(many->at(id).status.DebugString(), one->status.DebugString()) << id;
  }
  EXPECT_EQ(many->at("apps").status.refs_size(), 2);
  EXPECT_EQ(many->at("other").status.refs_size(), 0);
}

// The poll scheduler's rescan reads ids only: the same ids, in the same
// pages, as List.
TEST_F(PostgresRepositoryStoreTest, ListIdsPagesAsListDoes) {
  for (const char* id : {"zeta", "beta", "mid"}) {
    v1::Repository r;
    r.set_id(id);
    r.set_url(absl::StrCat("/srv/", id, ".git"));
    ASSERT_TRUE(store_->Create(r, Event(v1::AUDIT_ACTION_REPOSITORY_REGISTERED)).ok());
  }
  for (const std::string after : {"", "apps", "beta", "zeta"}) {
    for (int limit : {1, 2, 10}) {
      absl::StatusOr<std::vector<v1::Repository>> page = store_->List(after, limit);
      absl::StatusOr<std::vector<std::string>> ids = store_->ListIds(after, limit);
      ASSERT_TRUE(page.ok() && ids.ok()) << after << " " << limit;
      std::vector<std::string> want;
      for (const v1::Repository& r : *page) want.push_back(r.id());
      EXPECT_EQ(*ids, want) << after << " " << limit;
    }
  }
  EXPECT_EQ(*store_->ListIds("", 10), (std::vector<std::string>{"apps", "beta", "mid", "zeta"}));
}

// Each check rewrites a status row: the table must not be analyzed after
// every tenth of it changed (7 times a minute at 10,000 repositories).
TEST_F(PostgresRepositoryStoreTest, TheStatusTableIsAnalyzedOnlyAfterChangesOfFiveTimesItsSize) {
  absl::StatusOr<std::string> options = pool_->RunStatementWithResult<std::string>(
      [](pqxx::transaction_base& txn) -> absl::StatusOr<std::string> {
        pqxx::result r = txn.exec(
            "SELECT coalesce(array_to_string(reloptions, ','), '') FROM pg_class "
            "WHERE oid = 'repo_watcher.repository_status'::regclass");
        return r[0][0].as<std::string>();
      });
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_NE(options->find("autovacuum_analyze_scale_factor=5"), std::string::npos) << *options;
}

// The uneventful checks of many repositories go in one statement; a record
// older than the repository's last recorded check (a failure or a refresh
// written directly meanwhile) does not overwrite it.
TEST_F(PostgresRepositoryStoreTest, RecordChecksWritesManyAndNeverGoesBackInTime) {
  v1::Repository other;
  other.set_id("other");
  other.set_url("/srv/other.git");
  ASSERT_TRUE(store_->Create(other, Event(v1::AUDIT_ACTION_REPOSITORY_REGISTERED)).ok());
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  // "apps" failed at t0 + 10 s (written directly).
  ASSERT_TRUE(store_->RecordCheck({"apps", t0 + absl::Seconds(10), std::nullopt, "boom", 1, t0 + absl::Seconds(20)},
                                  std::nullopt)
                  .ok());
  std::vector<CheckRecord> batch = {
      {"apps", t0 + absl::Seconds(5), std::nullopt, "", 0, t0 + absl::Seconds(65)},  // older: skipped
      {"other", t0 + absl::Seconds(5), t0 + absl::Seconds(6), "", 0, t0 + absl::Seconds(66)},
      {"gone", t0, std::nullopt, "", 0, t0},  // unknown: skipped
  };
  ASSERT_TRUE(store_->RecordChecks(batch).ok());
  absl::StatusOr<v1::RepositoryStatus> apps = store_->GetStatus("apps");
  ASSERT_TRUE(apps.ok()) << apps.status();
  EXPECT_EQ(apps->last_error(), "boom");
  EXPECT_EQ(apps->consecutive_failures(), 1);
  EXPECT_EQ(apps->last_check_time().seconds(), absl::ToUnixSeconds(t0 + absl::Seconds(10)));
  absl::StatusOr<v1::RepositoryStatus> st = store_->GetStatus("other");
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->last_check_time().seconds(), absl::ToUnixSeconds(t0 + absl::Seconds(5)));
  EXPECT_EQ(st->last_fetch_time().seconds(), absl::ToUnixSeconds(t0 + absl::Seconds(6)));
  EXPECT_EQ(st->next_check_time().seconds(), absl::ToUnixSeconds(t0 + absl::Seconds(66)));
  EXPECT_EQ(st->last_error(), "");
  // A later batch moves it on; a fetch time not given keeps the last one.
  ASSERT_TRUE(store_->RecordChecks({{"other", t0 + absl::Seconds(70), std::nullopt, "", 0, t0 + absl::Seconds(130)}})
                  .ok());
  st = store_->GetStatus("other");
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->last_check_time().seconds(), absl::ToUnixSeconds(t0 + absl::Seconds(70)));
  EXPECT_EQ(st->last_fetch_time().seconds(), absl::ToUnixSeconds(t0 + absl::Seconds(6)));
  EXPECT_EQ(st->next_check_time().seconds(), absl::ToUnixSeconds(t0 + absl::Seconds(130)));
}

}  // namespace
}  // namespace ferry::repo_watcher
