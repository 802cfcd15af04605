// The git seam against real repositories made with the git CLI, reached over
// a plain path, file:// and smart HTTP (git http-backend).

#include <gtest/gtest.h>

#include <git2.h>

#include <filesystem>
#include <fstream>

#include "common/git/libgit2_client.h"
#include "tests/repo-watcher/git_test_repo.h"
#include "tests/support/test_database.h"

namespace ferry::git {
namespace {

using testing::GitTestRepo;

std::string Find(const std::vector<RemoteRef>& refs, const std::string& name) {
  for (const RemoteRef& r : refs) {
    if (r.name == name) return r.commit;
  }
  return "";
}

class Libgit2ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("git-client");
    repo_ = std::make_unique<GitTestRepo>(dir_);
    first_ = repo_->Commit({{"apps/a/deploy.yaml", "a: 1\n"}, {"apps/b/deploy.yaml", "b: 1\n"}}, "first");
    repo_->Git({"tag", "-a", "v1.0", "-m", "release"});
    repo_->Push("main");
    repo_->Push("v1.0");
  }
  std::string dir_;
  std::unique_ptr<GitTestRepo> repo_;
  std::string first_;
  Libgit2Client client_;
};

TEST_F(Libgit2ClientTest, ListsRemoteRefsOverPathFileUrlAndSmartHttp) {
  testing::GitHttpServer http(dir_);
  ASSERT_TRUE(http.ok());
  for (const std::string& url :
       {repo_->remote_path(), "file://" + repo_->remote_path(), http.UrlFor("remote.git")}) {
    absl::StatusOr<std::vector<RemoteRef>> refs = client_.ListRemoteRefs(url, {});
    ASSERT_TRUE(refs.ok()) << url << ": " << refs.status();
    EXPECT_EQ(Find(*refs, "refs/heads/main"), first_) << url;
    // The annotated tag is peeled to its commit.
    EXPECT_EQ(Find(*refs, "refs/tags/v1.0"), first_) << url;
  }
}

TEST_F(Libgit2ClientTest, UnreachableRemoteIsUnavailable) {
  absl::StatusOr<std::vector<RemoteRef>> refs = client_.ListRemoteRefs("http://127.0.0.1:1/none.git", {});
  ASSERT_FALSE(refs.ok());
  EXPECT_EQ(refs.status().code(), absl::StatusCode::kUnavailable) << refs.status();
}

TEST_F(Libgit2ClientTest, FetchesOverHttpAndReadsCommitsDiffsAndTrees) {
  testing::GitHttpServer http(dir_);
  ASSERT_TRUE(http.ok());
  std::string url = http.UrlFor("remote.git");
  std::filesystem::create_symlink("../apps/a/deploy.yaml", repo_->work_path() + "/link.yaml");
  repo_->Git({"add", "link.yaml"});
  std::string second = repo_->Commit({{"apps/b/deploy.yaml", "b: 2\n"}}, "second\n\nbody");
  repo_->Push("main");

  bool rebuilt = true;
  auto mirror = client_.OpenMirror(dir_ + "/mirror.git", url, &rebuilt);
  ASSERT_TRUE(mirror.ok()) << mirror.status();
  EXPECT_FALSE(rebuilt);
  EXPECT_FALSE((*mirror)->HasCommit(second));
  ASSERT_TRUE((*mirror)->Fetch(url, {"+refs/heads/main:refs/heads/main"}, {}).ok());
  EXPECT_TRUE((*mirror)->HasCommit(second));
  EXPECT_TRUE((*mirror)->HasCommit(first_));

  auto commit = (*mirror)->ReadCommit(second);
  ASSERT_TRUE(commit.ok()) << commit.status();
  EXPECT_EQ(commit->parents, std::vector<std::string>{first_});
  EXPECT_EQ(commit->author.email, "test@ferry.example");
  EXPECT_EQ(commit->message, "second\n\nbody\n");
  EXPECT_TRUE(commit->signature.empty());

  auto changed = (*mirror)->ChangedPaths(first_, second);
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(*changed, (std::vector<std::string>{"apps/b/deploy.yaml", "link.yaml"}));
  EXPECT_TRUE(*(*mirror)->IsDescendantOf(second, first_));
  EXPECT_FALSE(*(*mirror)->IsDescendantOf(first_, second));

  auto tree = (*mirror)->ListTree(second, "");
  ASSERT_TRUE(tree.ok()) << tree.status();
  ASSERT_EQ(tree->size(), 3u);
  EXPECT_EQ((*tree)[0].path, "apps/a/deploy.yaml");
  EXPECT_EQ((*tree)[2].path, "link.yaml");
  EXPECT_EQ((*tree)[2].type, TreeEntry::Type::kSymlink);
  EXPECT_EQ(*(*mirror)->ReadBlob((*tree)[2].oid), "../apps/a/deploy.yaml");
  auto sub = (*mirror)->ListTree(second, "apps/b");
  ASSERT_TRUE(sub.ok());
  ASSERT_EQ(sub->size(), 1u);
  EXPECT_EQ((*sub)[0].path, "apps/b/deploy.yaml");
  EXPECT_EQ((*sub)[0].size, 5);
}

TEST_F(Libgit2ClientTest, MissingPathIsNotFound) {
  bool rebuilt = false;
  auto mirror = client_.OpenMirror(dir_ + "/mirror.git", repo_->remote_path(), &rebuilt);
  ASSERT_TRUE(mirror.ok());
  ASSERT_TRUE((*mirror)->Fetch(repo_->remote_path(), {"+refs/heads/main:refs/heads/main"}, {}).ok());
  EXPECT_EQ((*mirror)->ListTree(first_, "nope").status().code(), absl::StatusCode::kNotFound);
}

// A monorepo folder of many applications is one big tree; reading each
// application's folder must not inflate and parse it again every time
// (issue #23: 2.4 ms a read at 10,000 applications, growing with their
// number). Trees above libgit2's 4 KiB default stay in its object cache.
TEST_F(Libgit2ClientTest, BigTreesStayInTheObjectCacheBetweenReads) {
  std::map<std::string, std::string> files;
  for (int i = 0; i < 400; ++i) files[absl::StrCat("apps/a", 10000 + i, "/config.yaml")] = "x: 1\n";
  std::string big = repo_->Commit(files, "many applications");
  repo_->Push("main");
  bool rebuilt = false;
  auto mirror = client_.OpenMirror(dir_ + "/mirror.git", repo_->remote_path(), &rebuilt);
  ASSERT_TRUE(mirror.ok()) << mirror.status();
  ASSERT_TRUE((*mirror)->Fetch(repo_->remote_path(), {"+refs/heads/main:refs/heads/main"}, {}).ok());
  ssize_t before = 0, allowed = 0;
  ASSERT_EQ(git_libgit2_opts(GIT_OPT_GET_CACHED_MEMORY, &before, &allowed), 0);
  for (int i = 0; i < 3; ++i) {
    auto read = (*mirror)->ListTree(big, absl::StrCat("apps/a", 10000 + i));
    ASSERT_TRUE(read.ok()) << read.status();
    ASSERT_EQ(read->size(), 1u);
    EXPECT_EQ((*read)[0].path, absl::StrCat("apps/a", 10000 + i, "/config.yaml"));
  }
  ssize_t after = 0;
  ASSERT_EQ(git_libgit2_opts(GIT_OPT_GET_CACHED_MEMORY, &after, &allowed), 0);
  // The apps/ tree: 400 entries of at least 33 bytes each.
  EXPECT_GE(after - before, 400 * 33) << "the apps/ tree was not kept in the object cache";
}

TEST_F(Libgit2ClientTest, CorruptOrForeignMirrorIsRebuilt) {
  std::string path = dir_ + "/mirror.git";
  bool rebuilt = false;
  ASSERT_TRUE(client_.OpenMirror(path, repo_->remote_path(), &rebuilt).ok());
  EXPECT_TRUE(client_.OpenExistingMirror(path, repo_->remote_path()).ok());
  std::filesystem::remove_all(path + "/objects");
  EXPECT_EQ(client_.OpenExistingMirror(path, repo_->remote_path()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto again = client_.OpenMirror(path, repo_->remote_path(), &rebuilt);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(rebuilt);
  ASSERT_TRUE((*again)->Fetch(repo_->remote_path(), {"+refs/heads/main:refs/heads/main"}, {}).ok());
  EXPECT_TRUE((*again)->HasCommit(first_));
  // A mirror made for another URL is not reused.
  EXPECT_FALSE(client_.OpenExistingMirror(path, "file:///elsewhere").ok());
}

}  // namespace
}  // namespace ferry::git
