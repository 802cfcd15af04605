// RepoPoller over a real Git repository and an in-memory store: which check
// records are written at once and which wait for the batcher (issue #23),
// and a repository deleted under a poll.

#include "services/repo-watcher/repo_poller.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "common/git/libgit2_client.h"
#include "common/secrets/secret_sources.h"
#include "prometheus/registry.h"
#include "tests/repo-watcher/git_test_repo.h"
#include "tests/support/fake_clock.h"
#include "tests/support/test_database.h"

namespace ferry::repo_watcher {
namespace {

class MemoryStore final : public RepositoryStore {
 public:
  std::map<std::string, v1::Repository> repos;
  std::map<std::string, v1::RepositoryStatus> statuses;
  std::vector<CheckRecord> direct;   // RecordCheck
  std::vector<CheckRecord> batched;  // RecordChecks
  int revisions = 0;
  int locks = 0;  // polls that took the poll lock
  int poll_reads = 0;        // ReadForPoll
  int poll_batch_reads = 0;  // ReadForPollMany

  absl::StatusOr<PollState> ReadForPoll(const std::string& id) override {
    ++poll_reads;
    return RepositoryStore::ReadForPoll(id);
  }
  absl::StatusOr<std::map<std::string, PollState>> ReadForPollMany(const std::vector<std::string>& ids) override {
    ++poll_batch_reads;
    std::map<std::string, PollState> out;
    for (const std::string& id : ids) {
      absl::StatusOr<PollState> one = RepositoryStore::ReadForPoll(id);
      if (one.ok()) out.emplace(id, *std::move(one));
    }
    return out;
  }

  absl::StatusOr<v1::Repository> Get(const std::string& id) override {
    auto it = repos.find(id);
    if (it == repos.end()) return absl::NotFoundError("no such repository");
    return it->second;
  }
  absl::StatusOr<v1::RepositoryStatus> GetStatus(const std::string& id) override {
    if (repos.count(id) == 0) return absl::NotFoundError("no such repository");
    v1::RepositoryStatus& s = statuses[id];
    s.set_repository_id(id);
    return s;
  }
  absl::Status RecordCheck(const CheckRecord& r, const std::optional<v1::Event>&) override {
    if (repos.count(r.repository_id) == 0) return absl::NotFoundError("no such repository");
    direct.push_back(r);
    Apply(r);
    return absl::OkStatus();
  }
  absl::Status RecordChecks(const std::vector<CheckRecord>& records) override {
    for (const CheckRecord& r : records) {
      if (repos.count(r.repository_id) == 0) continue;
      batched.push_back(r);
      Apply(r);
    }
    return absl::OkStatus();
  }
  absl::StatusOr<v1::Revision> RecordRevision(const v1::Revision& rev, const std::string&,
                                              const v1::Event&) override {
    ++revisions;
    v1::RepositoryStatus& s = statuses[rev.repository_id()];
    if (rev.ref_deleted()) {
      auto* refs = s.mutable_refs();
      for (int i = 0; i < refs->size(); ++i) {
        if (refs->Get(i).ref() == rev.ref()) refs->DeleteSubrange(i--, 1);
      }
      v1::Revision out = rev;
      out.set_cursor(std::to_string(revisions));
      return out;
    }
    v1::RefState* state = nullptr;
    for (v1::RefState& r : *s.mutable_refs()) {
      if (r.ref() == rev.ref()) state = &r;
    }
    if (state == nullptr) state = s.add_refs();
    state->set_ref(rev.ref());
    state->set_sha(rev.sha());
    state->set_accepted_sha(rev.sha());
    v1::Revision out = rev;
    out.set_cursor(std::to_string(revisions));
    return out;
  }
  absl::StatusOr<bool> WithRepositoryLock(const std::string&, const std::function<void()>& fn) override {
    ++locks;
    fn();
    return true;
  }
  absl::Status DropRefState(const std::string&, const std::string&) override { return absl::OkStatus(); }
  absl::StatusOr<v1::Repository> Create(const v1::Repository&, const v1::Event&) override { return Unused(); }
  absl::StatusOr<std::vector<v1::Repository>> List(const std::string&, int) override { return Unused(); }
  absl::StatusOr<v1::Repository> Update(const v1::Repository&, const v1::Repository&, const v1::Event&) override {
    return Unused();
  }
  absl::Status Delete(const std::string&, const v1::Event&) override { return Unused(); }
  absl::StatusOr<std::vector<v1::Revision>> RevisionsAfter(int64_t, const std::vector<std::string>&, bool,
                                                           int) override {
    return Unused();
  }
  absl::StatusOr<std::vector<v1::Revision>> ListRevisions(const RevisionQuery&) override { return Unused(); }
  absl::Status RecordEvent(const v1::Event&) override { return absl::OkStatus(); }

 private:
  void Apply(const CheckRecord& r) {
    v1::RepositoryStatus& s = statuses[r.repository_id];
    s.set_last_error(r.error);
    s.set_consecutive_failures(r.consecutive_failures);
  }
  static absl::Status Unused() { return absl::UnimplementedError("not used by the poller"); }
};

class NoSignatures final : public SignatureVerifier {
 public:
  SignatureCheck Verify(const git::Commit&, const v1::SignaturePolicy&) override { return {}; }
};

class RepoPollerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    remote_.Commit({{"app/config.yaml", "a: 1\n"}}, "first");
    remote_.Push("main");
    v1::Repository r;
    r.set_id("apps");
    r.set_url(remote_.remote_path());
    r.add_branches("main");
    store_.repos["apps"] = r;
  }

  const std::string dir_ = testing::MakeTempDir("poller");
  testing::GitTestRepo remote_{dir_};
  MemoryStore store_;
  git::Libgit2Client git_;
  MirrorSet mirrors_{&git_, dir_ + "/cache"};
  NoSignatures verifier_;
  RevisionNotifier notifier_;
  prometheus::Registry prometheus_;
  RepoWatcherMetrics metrics_{prometheus_};
  testing::FakeClock clock_;
  const secrets::SecretSources secrets_ = *secrets::SecretSources::Create({.secrets_dir = dir_});
  CheckBatcher batcher_{&store_, &clock_};
  RepoPoller poller_{&store_, &git_, &mirrors_, &verifier_, &notifier_, &metrics_, &clock_, &secrets_, {}, &batcher_};
};

TEST_F(RepoPollerTest, OnlyUneventfulScheduledChecksWaitForTheBatch) {
  // A scheduled check that records a revision found no error either: its
  // record may wait (the revision itself is written at once).
  PollResult first = poller_.Poll("apps", nullptr, /*scheduled=*/true);
  ASSERT_TRUE(first.status.ok()) << first.status;
  EXPECT_EQ(store_.revisions, 1);
  EXPECT_EQ(batcher_.pending(), 1u);
  EXPECT_TRUE(store_.direct.empty());

  // Nothing changed, scheduled: waits for the batch.
  ASSERT_TRUE(poller_.Poll("apps", nullptr, true).status.ok());
  EXPECT_EQ(batcher_.pending(), 1u);  // the newer replaced the older
  EXPECT_TRUE(store_.direct.empty());
  ASSERT_TRUE(batcher_.Flush().ok());
  ASSERT_EQ(store_.batched.size(), 1u);

  // Asked for (a refresh someone may wait on): written at once.
  ASSERT_TRUE(poller_.Poll("apps", nullptr, /*scheduled=*/false).status.ok());
  EXPECT_EQ(store_.direct.size(), 1u);
  EXPECT_EQ(batcher_.pending(), 0u);

  // A failure is written at once, and so is the recovery after it.
  std::filesystem::rename(remote_.remote_path(), remote_.remote_path() + ".away");
  EXPECT_FALSE(poller_.Poll("apps", nullptr, true).status.ok());
  ASSERT_EQ(store_.direct.size(), 2u);
  EXPECT_EQ(store_.direct.back().consecutive_failures, 1);
  std::filesystem::rename(remote_.remote_path() + ".away", remote_.remote_path());
  ASSERT_TRUE(poller_.Poll("apps", nullptr, true).status.ok());
  ASSERT_EQ(store_.direct.size(), 3u);
  EXPECT_EQ(store_.direct.back().consecutive_failures, 0);
  EXPECT_EQ(store_.direct.back().error, "");
  EXPECT_EQ(batcher_.pending(), 0u);
}

// Issue #23: every scheduled check read its repository in a statement of its
// own (167 a second for 10,000 repositories at a 60 s interval). The
// scheduler has the checks falling due together read in one go: a check
// goes by that read (once, while fresh), and one that finds a ref moved
// reads again under the poll lock.
TEST_F(RepoPollerTest, AScheduledCheckGoesByTheReadAheadOnceWhileFresh) {
  ASSERT_TRUE(poller_.Poll("apps", nullptr, true).status.ok());  // the first: full
  const int reads = store_.poll_reads;
  poller_.Prefetch({"apps", "unknown"});
  EXPECT_EQ(store_.poll_batch_reads, 1);
  ASSERT_TRUE(poller_.Poll("apps", nullptr, true).status.ok());
  EXPECT_EQ(store_.poll_reads, reads) << "the check read its repository again";
  EXPECT_EQ(store_.locks, 1);
  ASSERT_TRUE(poller_.Poll("apps", nullptr, true).status.ok());
  EXPECT_EQ(store_.poll_reads, reads + 1) << "the read ahead was used twice";

  // A push after the read ahead: the move is seen and recorded.
  poller_.Prefetch({"apps"});
  std::string second = remote_.Commit({{"app/config.yaml", "a: 2\n"}}, "second");
  remote_.Push("main");
  ASSERT_TRUE(poller_.Poll("apps", nullptr, true).status.ok());
  EXPECT_EQ(store_.locks, 2);
  EXPECT_EQ(store_.revisions, 2);
  EXPECT_EQ(store_.statuses["apps"].refs(0).sha(), second);

  // Read too long ago: not used.
  poller_.Prefetch({"apps"});
  clock_.Advance(RepoPoller::kPrefetchMaxAge + absl::Seconds(1));
  const int before = store_.poll_reads;
  ASSERT_TRUE(poller_.Poll("apps", nullptr, true).status.ok());
  EXPECT_EQ(store_.poll_reads, before + 1);
}

TEST_F(RepoPollerTest, ARepositoryDeletedUnderThePollHasItsMirrorRemoved) {
  ASSERT_TRUE(poller_.Poll("apps", nullptr, false).status.ok());
  ASSERT_TRUE(std::filesystem::exists(mirrors_.PathFor("apps")));
  store_.repos.erase("apps");
  PollResult gone = poller_.Poll("apps", nullptr, true);
  EXPECT_TRUE(gone.repository_gone);
  EXPECT_EQ(gone.status.code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(mirrors_.PathFor("apps")));
}

// A scheduled check that finds every ref where it was recorded, and the
// mirror known to hold them, is done without the poll lock or the mirror;
// anything else (a move, a failure before, a mirror a reader found broken,
// a new process) gets the full check.
TEST_F(RepoPollerTest, AnUnchangedScheduledCheckTakesNeitherTheLockNorTheMirror) {
  ASSERT_TRUE(poller_.Poll("apps", nullptr, true).status.ok());
  EXPECT_EQ(store_.locks, 1);
  EXPECT_EQ(store_.revisions, 1);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(poller_.Poll("apps", nullptr, true).status.ok());
  EXPECT_EQ(store_.locks, 1) << "unchanged: no lock";
  EXPECT_EQ(batcher_.pending(), 1u);

  // Asked for: the full check.
  ASSERT_TRUE(poller_.Poll("apps", nullptr, false).status.ok());
  EXPECT_EQ(store_.locks, 2);

  // A push: the listing differs, so the full check records the revision.
  std::string second = remote_.Commit({{"app/config.yaml", "a: 2\n"}}, "second");
  remote_.Push("main");
  ASSERT_TRUE(poller_.Poll("apps", nullptr, true).status.ok());
  EXPECT_EQ(store_.locks, 3);
  EXPECT_EQ(store_.revisions, 2);
  EXPECT_EQ(store_.statuses["apps"].refs(0).sha(), second);
  ASSERT_TRUE(poller_.Poll("apps", nullptr, true).status.ok());
  EXPECT_EQ(store_.locks, 3) << "unchanged again";

  // A reader finds the mirror gone: the next check repairs it.
  std::filesystem::remove_all(mirrors_.PathFor("apps"));
  EXPECT_FALSE(mirrors_.OpenForRead("apps", remote_.remote_path()).ok());
  ASSERT_TRUE(poller_.Poll("apps", nullptr, true).status.ok());
  EXPECT_EQ(store_.locks, 4);
  auto repaired = mirrors_.OpenForRead("apps", remote_.remote_path());
  ASSERT_TRUE(repaired.ok()) << repaired.status();
  EXPECT_TRUE(repaired->repo->HasCommit(second));

  // A failure is recorded without the lock; the check after it is full.
  std::filesystem::rename(remote_.remote_path(), remote_.remote_path() + ".away");
  EXPECT_FALSE(poller_.Poll("apps", nullptr, true).status.ok());
  EXPECT_EQ(store_.direct.back().consecutive_failures, 1);
  std::filesystem::rename(remote_.remote_path() + ".away", remote_.remote_path());
  ASSERT_TRUE(poller_.Poll("apps", nullptr, true).status.ok());
  EXPECT_EQ(store_.direct.back().consecutive_failures, 0);
  EXPECT_EQ(store_.locks, 5);

  // Another process (a restart) knows nothing of the mirror yet.
  MirrorSet fresh(&git_, dir_ + "/cache");
  RepoPoller restarted{&store_, &git_, &fresh, &verifier_, &notifier_, &metrics_, &clock_, &secrets_, {}, &batcher_};
  ASSERT_TRUE(restarted.Poll("apps", nullptr, true).status.ok());
  EXPECT_EQ(store_.locks, 6);
  ASSERT_TRUE(restarted.Poll("apps", nullptr, true).status.ok());
  EXPECT_EQ(store_.locks, 6);
  EXPECT_EQ(store_.revisions, 2) << "nothing recorded twice";
}

// The scheduled check reads only the tracked refs of a repository on this
// host (issue #23); a branch that starts or stops matching a pattern still
// sends it to the full check.
TEST_F(RepoPollerTest, AScheduledCheckSeesTrackedBranchesComeAndGo) {
  store_.repos["apps"].add_branches("release/*");
  store_.repos["apps"].add_tag_patterns("v*");
  ASSERT_TRUE(poller_.Poll("apps", nullptr, true).status.ok());
  EXPECT_EQ(store_.locks, 1);
  remote_.Git({"branch", "topic"});
  remote_.Push("topic");  // not tracked
  ASSERT_TRUE(poller_.Poll("apps", nullptr, true).status.ok());
  EXPECT_EQ(store_.locks, 1) << "an untracked branch is not a change";

  remote_.Git({"branch", "release/1"});
  remote_.Push("release/1");
  ASSERT_TRUE(poller_.Poll("apps", nullptr, true).status.ok());
  EXPECT_EQ(store_.locks, 2) << "a new release branch";
  EXPECT_EQ(store_.statuses["apps"].refs_size(), 2);
  remote_.Git({"tag", "-a", "v1", "-m", "one"});
  remote_.Push("v1");
  ASSERT_TRUE(poller_.Poll("apps", nullptr, true).status.ok());
  EXPECT_EQ(store_.locks, 3) << "a new tag";
  EXPECT_EQ(store_.statuses["apps"].refs_size(), 3);
  ASSERT_TRUE(poller_.Poll("apps", nullptr, true).status.ok());
  EXPECT_EQ(store_.locks, 3) << "the annotated tag compares as its commit";

  remote_.Push(":refs/heads/release/1");
  ASSERT_TRUE(poller_.Poll("apps", nullptr, true).status.ok());
  EXPECT_EQ(store_.locks, 4) << "a deleted release branch";
  EXPECT_EQ(store_.statuses["apps"].refs_size(), 2);
  ASSERT_TRUE(poller_.Poll("apps", nullptr, true).status.ok());
  EXPECT_EQ(store_.locks, 4);
}

}  // namespace
}  // namespace ferry::repo_watcher
