// MirrorSet against real mirrors made with the git CLI: handles are reused
// across reads (each keeps libgit2's object cache), never across a rebuild
// or a removal, and reads through a reused handle see what a later fetch
// brought.

#include "services/repo-watcher/mirror_set.h"

#include <gtest/gtest.h>

#include "common/git/libgit2_client.h"
#include "tests/repo-watcher/git_test_repo.h"
#include "tests/support/test_database.h"

namespace ferry::repo_watcher {
namespace {

using testing::GitTestRepo;

class MirrorSetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ferry::testing::MakeTempDir("mirror-set");
    repo_ = std::make_unique<GitTestRepo>(dir_ + "/remote");
    first_ = repo_->Commit({{"apps/a/config.yaml", "a: 1\n"}}, "first");
    repo_->Push("main");
    mirrors_ = std::make_unique<MirrorSet>(&git_, dir_ + "/cache");
    Fetch();
  }
  void Fetch() {
    absl::StatusOr<MirrorSet::Lease> lease = mirrors_->Open("apps", repo_->remote_path());
    ASSERT_TRUE(lease.ok()) << lease.status();
    ASSERT_TRUE(lease->repo->Fetch(repo_->remote_path(), {"+refs/heads/*:refs/heads/*"}, {}).ok());
  }
  // The handle a read gets (compared by address only).
  const git::Repository* ReadHandle() {
    absl::StatusOr<MirrorSet::Lease> lease = mirrors_->OpenForRead("apps", repo_->remote_path());
    EXPECT_TRUE(lease.ok()) << lease.status();
    return lease.ok() ? lease->repo.get() : nullptr;
  }

  std::string dir_;
  std::unique_ptr<GitTestRepo> repo_;
  std::string first_;
  git::Libgit2Client git_;
  std::unique_ptr<MirrorSet> mirrors_;
};

TEST_F(MirrorSetTest, ASecondReadReusesTheHandleOfTheFirst) {
  const git::Repository* first = ReadHandle();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(ReadHandle(), first) << "the mirror was opened afresh (its object cache lost)";
}

TEST_F(MirrorSetTest, ReadsAtOnceGetHandlesOfTheirOwn) {
  absl::StatusOr<MirrorSet::Lease> a = mirrors_->OpenForRead("apps", repo_->remote_path());
  absl::StatusOr<MirrorSet::Lease> b = mirrors_->OpenForRead("apps", repo_->remote_path());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->repo.get(), b->repo.get());
}

TEST_F(MirrorSetTest, AReusedHandleSeesWhatALaterFetchBrought) {
  {
    absl::StatusOr<MirrorSet::Lease> lease = mirrors_->OpenForRead("apps", repo_->remote_path());
    ASSERT_TRUE(lease.ok());
    ASSERT_TRUE(lease->repo->HasCommit(first_));
  }
  std::string second = repo_->Commit({{"apps/b/config.yaml", "b: 1\n"}}, "second");
  repo_->Push("main");
  Fetch();
  absl::StatusOr<MirrorSet::Lease> lease = mirrors_->OpenForRead("apps", repo_->remote_path());
  ASSERT_TRUE(lease.ok());
  EXPECT_TRUE(lease->repo->HasCommit(second));
  auto tree = lease->repo->ListTree(second, "apps/b");
  ASSERT_TRUE(tree.ok()) << tree.status();
  ASSERT_EQ(tree->size(), 1u);
  EXPECT_EQ((*tree)[0].path, "apps/b/config.yaml");
}

TEST_F(MirrorSetTest, NoHandleIsReusedAcrossARemovalOrForAnotherUrl) {
  const git::Repository* before = ReadHandle();
  ASSERT_NE(before, nullptr);
  // Another URL: never the handle opened for the first one.
  absl::StatusOr<MirrorSet::Lease> other = mirrors_->OpenForRead("apps", dir_ + "/elsewhere.git");
  EXPECT_FALSE(other.ok() && other->repo.get() == before);
  mirrors_->Remove("apps");
  EXPECT_FALSE(mirrors_->OpenForRead("apps", repo_->remote_path()).ok()) << "removed: nothing to read";
  Fetch();  // made again
  absl::StatusOr<MirrorSet::Lease> lease = mirrors_->OpenForRead("apps", repo_->remote_path());
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_TRUE(lease->repo->HasCommit(first_));
}

}  // namespace
}  // namespace ferry::repo_watcher
