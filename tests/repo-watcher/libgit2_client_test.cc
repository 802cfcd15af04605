// The git seam against real repositories made with the git CLI, reached over
// a plain path, file:// and smart HTTP (git http-backend).

#include <gtest/gtest.h>

#include <git2.h>
#include <fnmatch.h>
#include <malloc.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define FERRY_SANITIZED_HEAP 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define FERRY_SANITIZED_HEAP 1
#endif
#endif
#ifdef FERRY_SANITIZED_HEAP
#include <sanitizer/allocator_interface.h>
#endif

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/git/libgit2_client.h"
#include "common/git/local_fetch.h"
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

// Bytes the process has allocated and not freed (every malloc arena, or the
// sanitizer's allocator when it replaces malloc).
size_t HeapInUse() {
#ifdef FERRY_SANITIZED_HEAP
  return __sanitizer_get_current_allocated_bytes();
#else
  struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
#endif
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

// name -> (target, commit) of the refs `patterns` selects.
std::map<std::string, std::pair<std::string, std::string>> Selected(const std::vector<RemoteRef>& refs,
                                                                     const RefPatterns& patterns) {
  std::map<std::string, std::pair<std::string, std::string>> out;
  for (const RemoteRef& r : refs) {
    for (const auto& [dir, list] : {std::pair{"refs/heads/", &patterns.branches}, {"refs/tags/", &patterns.tags}}) {
      absl::string_view name = r.name;
      if (!absl::ConsumePrefix(&name, dir)) continue;
      for (const std::string& p : *list) {
        if (fnmatch(p.c_str(), std::string(name).c_str(), FNM_PATHNAME) == 0) out[r.name] = {r.target, r.commit};
      }
    }
  }
  return out;
}

// The repository check's read (issue #23): of a repository on this host,
// only the tracked refs, and those exactly as ls-remote gives them: loose
// and packed, a symbolic branch resolved, annotated tags peeled.
TEST_F(Libgit2ClientTest, TheTrackedRefsOfALocalRepositoryAreThoseLsRemoteGives) {
  repo_->Git({"tag", "v2.0"});  // lightweight
  repo_->Git({"branch", "release/1"});
  repo_->Push("release/1");
  repo_->Push("v2.0");
  repo_->Git({"--git-dir", repo_->remote_path(), "pack-refs", "--all"});
  std::string second = repo_->Commit({{"apps/a/deploy.yaml", "a: 2\n"}}, "second");
  repo_->Push("main");  // loose again, over the packed entry
  repo_->Git({"branch", "release/2"});
  repo_->Git({"branch", "feature"});
  repo_->Git({"tag", "-a", "other", "-m", "not selected"});
  repo_->Push("release/2");
  repo_->Push("feature");
  repo_->Push("other");
  repo_->Git({"--git-dir", repo_->remote_path(), "symbolic-ref", "refs/heads/alias", "refs/heads/release/1"});

  for (const RefPatterns& patterns : {RefPatterns{{"main", "alias"}, {"v1.0"}},
                                      RefPatterns{{"main", "release/*", "alias"}, {"v*"}},
                                      RefPatterns{{"*"}, {}}, RefPatterns{{"gone"}, {"v9"}}}) {
    for (const std::string& url : {repo_->remote_path(), "file://" + repo_->remote_path()}) {
      absl::StatusOr<std::vector<RemoteRef>> all = client_.ListRemoteRefs(url, {});
      ASSERT_TRUE(all.ok()) << all.status();
      absl::StatusOr<std::vector<RemoteRef>> tracked = client_.ListRemoteRefsFor(url, {}, patterns);
      ASSERT_TRUE(tracked.ok()) << tracked.status();
      EXPECT_EQ(Selected(*tracked, patterns), Selected(*all, patterns)) << url << " " << patterns.branches[0];
    }
  }
  absl::StatusOr<std::vector<RemoteRef>> tracked =
      client_.ListRemoteRefsFor(repo_->remote_path(), {}, RefPatterns{{"main", "release/*", "alias"}, {"v*"}});
  ASSERT_TRUE(tracked.ok()) << tracked.status();
  auto selected = Selected(*tracked, RefPatterns{{"main", "release/*", "alias"}, {"v*"}});
  EXPECT_EQ(selected.size(), 6u);
  EXPECT_EQ(selected["refs/heads/main"].second, second);
  EXPECT_EQ(selected["refs/heads/alias"].second, first_);
  EXPECT_EQ(selected["refs/tags/v1.0"].second, first_);
  EXPECT_NE(selected["refs/tags/v1.0"].first, first_);  // the tag object
  EXPECT_EQ(selected["refs/tags/v2.0"].second, first_);
}

// Refs the check does not track are not read at all: a tag naming a
// missing object beside them fails a full ls-remote (which peels every
// tag), not the check of the named refs.
TEST_F(Libgit2ClientTest, ALocalRepositorysUntrackedRefsAreNotRead) {
  std::ofstream(repo_->remote_path() + "/refs/tags/zz-broken") << std::string(40, 'a') << "\n";
  absl::StatusOr<std::vector<RemoteRef>> all = client_.ListRemoteRefs(repo_->remote_path(), {});
  EXPECT_FALSE(all.ok());
  absl::StatusOr<std::vector<RemoteRef>> tracked =
      client_.ListRemoteRefsFor(repo_->remote_path(), {}, RefPatterns{{"main"}, {"v1.0"}});
  ASSERT_TRUE(tracked.ok()) << tracked.status();
  EXPECT_EQ(Find(*tracked, "refs/heads/main"), first_);
  EXPECT_EQ(Find(*tracked, "refs/tags/v1.0"), first_);
  // A wildcard reads the folder, and the broken ref with it: that error is
  // ls-remote's own.
  absl::StatusOr<std::vector<RemoteRef>> globbed =
      client_.ListRemoteRefsFor(repo_->remote_path(), {}, RefPatterns{{"main"}, {"v*"}});
  ASSERT_FALSE(globbed.ok());
  EXPECT_EQ(globbed.status(), all.status());
}

// What cannot be read that way is answered by ls-remote, with its error.
TEST_F(Libgit2ClientTest, ARefsReadThatFailsIsLsRemotes) {
  const RefPatterns main{{"main"}, {}};
  for (const std::string& url : {dir_ + "/none.git", "file://" + dir_ + "/none.git", dir_, std::string("relative.git"),
                                 std::string("http://127.0.0.1:1/none.git")}) {
    absl::StatusOr<std::vector<RemoteRef>> all = client_.ListRemoteRefs(url, {});
    absl::StatusOr<std::vector<RemoteRef>> tracked = client_.ListRemoteRefsFor(url, {}, main);
    ASSERT_FALSE(all.ok()) << url;
    EXPECT_EQ(tracked.status(), all.status()) << url;
  }
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

// The repo-watcher fetches each repository on every change for as long as it
// runs, so a fetch must give back what it allocates. With libgit2 1.5 an
// anonymous remote's url.*.insteadOf lookup leaked one PCRE2 match block
// (about 20 KiB) per configuration entry at each fetch: about 280 KiB per
// fetch, 1.5 GiB for 10,000 repositories fetched once (issue #23).
TEST_F(Libgit2ClientTest, RepeatedFetchesKeepNoMemory) {
  bool rebuilt = false;
  auto mirror = client_.OpenMirror(dir_ + "/mirror.git", repo_->remote_path(), &rebuilt);
  ASSERT_TRUE(mirror.ok()) << mirror.status();
  const std::vector<std::string> spec = {"+refs/heads/main:refs/heads/main"};
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*mirror)->Fetch(repo_->remote_path(), spec, {}).ok());  // warm caches
  constexpr int kFetches = 100;
  const size_t before = HeapInUse();
  for (int i = 0; i < kFetches; ++i) {
    absl::Status fetched = (*mirror)->Fetch(repo_->remote_path(), spec, {});
    ASSERT_TRUE(fetched.ok()) << fetched;
  }
  const size_t after = HeapInUse();
  const size_t grown = after > before ? after - before : 0;
  // Leaking even 20 KiB a fetch would be 2 MiB here; the leak was 28 MiB.
  EXPECT_LT(grown, size_t{1} << 20) << "heap grew by " << grown / 1024 << " KiB over " << kFetches << " fetches";
  // The mirror still fetches what is new.
  std::string second = repo_->Commit({{"apps/a/deploy.yaml", "a: 2\n"}}, "second");
  repo_->Push("main");
  ASSERT_TRUE((*mirror)->Fetch(repo_->remote_path(), spec, {}).ok());
  EXPECT_TRUE((*mirror)->HasCommit(second));
}

// A fetch reaches the registered URL itself, the one ls-remote lists and the
// credentials were matched against: a url.<base>.insteadOf rule in the
// mirror's (or the host's) git configuration does not send it elsewhere.
TEST_F(Libgit2ClientTest, FetchIgnoresInsteadOfRewrites) {
  std::string path = dir_ + "/mirror.git";
  bool rebuilt = false;
  ASSERT_TRUE(client_.OpenMirror(path, repo_->remote_path(), &rebuilt).ok());
  {
    std::ofstream config(path + "/config", std::ios::app);
    config << "[url \"file:///nonexistent/elsewhere\"]\n\tinsteadOf = " << repo_->remote_path() << "\n";
  }
  auto mirror = client_.OpenExistingMirror(path, repo_->remote_path());
  ASSERT_TRUE(mirror.ok()) << mirror.status();
  absl::Status fetched = (*mirror)->Fetch(repo_->remote_path(), {"+refs/heads/main:refs/heads/main"}, {});
  ASSERT_TRUE(fetched.ok()) << fetched;
  EXPECT_TRUE((*mirror)->HasCommit(first_));
}

// Only a repository's own config is read: libgit2 looks in no system,
// global (~/.gitconfig) or XDG directory, so the service user's insteadOf,
// proxy or core settings change nothing, and no repository open (a local
// ls-remote for each check) reads them.
TEST_F(Libgit2ClientTest, NoConfigOutsideTheRepositoryIsRead) {
  for (git_config_level_t level :
       {GIT_CONFIG_LEVEL_SYSTEM, GIT_CONFIG_LEVEL_XDG, GIT_CONFIG_LEVEL_GLOBAL, GIT_CONFIG_LEVEL_PROGRAMDATA}) {
    git_buf path = GIT_BUF_INIT;
    ASSERT_EQ(git_libgit2_opts(GIT_OPT_GET_SEARCH_PATH, level, &path), 0) << level;
    EXPECT_EQ(std::string(path.ptr == nullptr ? "" : path.ptr, path.size), "") << level;
    git_buf_dispose(&path);
  }
  git_config* raw = nullptr;
  ASSERT_EQ(git_config_open_default(&raw), 0);
  git_config_entry* entry = nullptr;
  EXPECT_NE(git_config_get_entry(&entry, raw, "user.name"), 0) << "a config outside any repository was read";
  git_config_entry_free(entry);
  git_config_free(raw);
}

// Pack files in a mirror's object database (what a fetch kept).
int PackFiles(const std::string& mirror) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(mirror + "/objects/pack")) {
    if (e.path().extension() == ".pack") ++n;
  }
  return n;
}

TEST_F(Libgit2ClientTest, AFetchPastItsLimitsStopsKeepsNothingAndSaysWhichLimit) {
  testing::GitHttpServer http(dir_);
  ASSERT_TRUE(http.ok());
  const std::string url = http.UrlFor("remote.git");
  const std::string big = repo_->Commit({{"blob.bin", testing::IncompressibleBytes(3 << 20)}}, "three MiB that do not compress");
  repo_->Push("main");

  // Bytes: a 3 MiB pack against a 1 MiB bound, over smart HTTP.
  Libgit2Client bounded(FetchLimits{.max_bytes = 1 << 20, .max_objects = 0});
  bool rebuilt = false;
  auto mirror = bounded.OpenMirror(dir_ + "/mirror.git", url, &rebuilt);
  ASSERT_TRUE(mirror.ok()) << mirror.status();
  absl::Status s = (*mirror)->Fetch(url, {"+refs/heads/main:refs/heads/main"}, {});
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_NE(s.message().find("--max-fetch-bytes"), std::string::npos) << s;
  EXPECT_FALSE((*mirror)->HasCommit(big));
  EXPECT_FALSE((*mirror)->HasCommit(first_));
  EXPECT_EQ(PackFiles(dir_ + "/mirror.git"), 0) << "the stopped fetch's pack was kept";

  // Objects: the pack header (every object of two commits and a tag) against
  // a bound of 3, over a plain path.
  Libgit2Client few(FetchLimits{.max_bytes = 0, .max_objects = 3});
  auto other = few.OpenMirror(dir_ + "/few.git", repo_->remote_path(), &rebuilt);
  ASSERT_TRUE(other.ok()) << other.status();
  s = (*other)->Fetch(repo_->remote_path(), {"+refs/heads/main:refs/heads/main"}, {});
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_NE(s.message().find("--max-fetch-objects"), std::string::npos) << s;
  EXPECT_FALSE((*other)->HasCommit(first_));

  // Within bounds the same mirror fetches everything.
  Libgit2Client roomy(FetchLimits{.max_bytes = 8 << 20, .max_objects = 100});
  auto again = roomy.OpenMirror(dir_ + "/mirror.git", url, &rebuilt);
  ASSERT_TRUE(again.ok()) << again.status();
  s = (*again)->Fetch(url, {"+refs/heads/main:refs/heads/main"}, {});
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE((*again)->HasCommit(big));
}

// ChangedPaths (its own walk that skips shared subtrees, issue #23) lists
// what `git diff --name-only --no-renames` lists: files modified, added
// and deleted, whole folders added and deleted, a file replaced by a folder
// and a folder by a file, names ordered as Git orders a folder ("a/" after
// "a-b" and "a.txt").
TEST_F(Libgit2ClientTest, ChangedPathsListsWhatGitDiffLists) {
  std::string second = repo_->Commit({{"conf", "a file\n"},
                                      {"lib/x.yaml", "x\n"},
                                      {"lib/y/z.yaml", "z\n"},
                                      {"a-b", "1\n"},
                                      {"a.txt", "1\n"},
                                      {"a/x", "1\n"}},
                                     "second");
  std::string third = repo_->Commit({{"-conf", ""},
                                     {"-lib", ""},
                                     {"-apps/b", ""},
                                     {"conf/c.yaml", "now a folder\n"},
                                     {"lib", "now a file\n"},
                                     {"apps/a/deploy.yaml", "a: 2\n"},
                                     {"apps/c/x.yaml", "c\n"},
                                     {"a/x", "2\n"}},
                                    "third");
  repo_->Push("main");
  bool rebuilt = false;
  auto mirror = client_.OpenMirror(dir_ + "/mirror.git", repo_->remote_path(), &rebuilt);
  ASSERT_TRUE(mirror.ok()) << mirror.status();
  ASSERT_TRUE((*mirror)->Fetch(repo_->remote_path(), {"+refs/heads/main:refs/heads/main"}, {}).ok());
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {second, third}, {third, second}, {first_, third}, {first_, second}, {third, third}}) {
    std::vector<std::string> want = absl::StrSplit(repo_->Git({"diff", "--name-only", "--no-renames", from, to}), '\n',
                                                   absl::SkipWhitespace());
    std::sort(want.begin(), want.end());
    auto got = (*mirror)->ChangedPaths(from, to);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, want) << from << ".." << to;
  }
  EXPECT_FALSE((*mirror)->ChangedPaths(second, third)->empty());
}

// A fetch from a repository on this machine that adds a few commits packs
// the objects the mirror lacks and no others (FetchLocalIncrement, issue
// #23: libgit2's local transport walks the whole repository to find them):
// after each fetch the mirror holds exactly the objects reachable from the
// fetched branch, every one of them (fsck), once.
TEST_F(Libgit2ClientTest, ALocalFetchOfAFewCommitsPacksExactlyWhatTheMirrorLacks) {
  std::map<std::string, std::string> files;
  for (int i = 0; i < 200; ++i) {
    files[absl::StrCat("apps/a", i, "/config.yaml")] = absl::StrCat("app ", i, "\n");
    files[absl::StrCat("apps/a", i, "/more/settings.yaml")] = absl::StrCat("settings ", i, "\n");
  }
  repo_->Commit(files, "two hundred folders");
  repo_->Push("main");
  const std::string mirror_path = dir_ + "/mirror.git";
  bool rebuilt = false;
  auto mirror = client_.OpenMirror(mirror_path, repo_->remote_path(), &rebuilt);
  ASSERT_TRUE(mirror.ok()) << mirror.status();
  git_repository* raw = nullptr;
  ASSERT_EQ(git_repository_open(&raw, mirror_path.c_str()), 0);
  RepositoryHandle handle(raw);
  const std::vector<std::string> main = {"+refs/heads/main:refs/heads/main"};
  auto fetch = [&](const std::string& url) {
    Credentials none;
    FetchLimits limits;
    CredentialPayload payload{&none, 0, url, &limits, ""};
    absl::StatusOr<bool> done = FetchLocalIncrement(handle.get(), url, main, &payload);
    EXPECT_TRUE(done.ok()) << done.status();
    return done.ok() && *done;
  };
  auto objects = [&](const std::string& git_dir) {
    std::string listed = repo_->Git({"--git-dir=" + git_dir, "rev-list", "--objects", "refs/heads/main"});
    return std::vector<std::string>(absl::StrSplit(listed, '\n', absl::SkipWhitespace())).size();
  };
  auto in_pack = [&]() {
    std::string counts = repo_->Git({"--git-dir=" + mirror_path, "count-objects", "-v"});
    size_t at = counts.find("in-pack: ");
    return at == std::string::npos ? -1 : std::stoi(counts.substr(at + 9));
  };
  auto check = [&](const std::string& sha) {
    EXPECT_EQ(repo_->Git({"--git-dir=" + mirror_path, "rev-parse", "refs/heads/main"}), sha);
    repo_->Git({"--git-dir=" + mirror_path, "fsck", "--connectivity-only", "--no-dangling", "refs/heads/main"});
    EXPECT_EQ(static_cast<size_t>(in_pack()), objects(mirror_path)) << "objects sent twice";
    EXPECT_EQ(objects(mirror_path), objects(repo_->remote_path()));
  };
  // The first fetch: two commits, all of their objects.
  ASSERT_TRUE(fetch(repo_->remote_path()));
  check(repo_->Git({"rev-parse", "HEAD"}));

  // One folder changed, one added (nested), one deleted, a file moved up: the
  // new commit's own objects only (over file:// as well).
  std::string touched = repo_->Commit({{"-apps/a7", ""},
                                       {"apps/a5/config.yaml", "app 5 rev 2\n"},
                                       {"apps/new/deep/er/x.yaml", "new\n"},
                                       {"settings.yaml", "settings 9\n"}},
                                      "touch a few");
  std::string again = repo_->Commit({{"apps/a6/more/settings.yaml", "settings 6 rev 2\n"}}, "and one more");
  repo_->Push("main");
  const int before = in_pack();
  ASSERT_TRUE(fetch("file://" + repo_->remote_path()));
  check(again);
  // touched: commit, root, apps/, apps/a5/ and its file, apps/new/deep/er/
  // (3 trees) and x.yaml (settings.yaml is apps/a9/more/settings.yaml's
  // blob, which the mirror has); again: commit, root, apps/, apps/a6/,
  // apps/a6/more/ and its file.
  EXPECT_EQ(in_pack() - before, 9 + 6);
  EXPECT_TRUE((*mirror)->HasCommit(touched));
  auto changed = (*mirror)->ChangedPaths(first_, again);
  ASSERT_TRUE(changed.ok()) << changed.status();

  // Up to date: nothing packed.
  const int now = in_pack();
  ASSERT_TRUE(fetch(repo_->remote_path()));
  EXPECT_EQ(in_pack(), now);

  // Not for it, nothing changed: another kind of URL, a refspec not forced
  // or naming a pattern, a ref the source lacks, more new commits than
  // kMaxLocalIncrementCommits.
  std::string last;
  for (int i = 0; i <= kMaxLocalIncrementCommits; ++i)
    last = repo_->Commit({{"apps/a1/config.yaml", absl::StrCat("rev ", i, "\n")}}, absl::StrCat("c", i));
  repo_->Push("main");
  Credentials none;
  FetchLimits limits;
  CredentialPayload payload{&none, 0, "", &limits, ""};
  for (const auto& [url, specs] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {repo_->remote_path(), main},
           {"http://127.0.0.1:1/remote.git", main},
           {repo_->remote_path(), {"refs/heads/main:refs/heads/main"}},
           {repo_->remote_path(), {"+refs/heads/*:refs/heads/*"}},
           {repo_->remote_path(), {"+refs/heads/nope:refs/heads/nope"}}}) {
    absl::StatusOr<bool> done = FetchLocalIncrement(handle.get(), url, specs, &payload);
    ASSERT_TRUE(done.ok()) << done.status();
    EXPECT_FALSE(*done) << url << " " << specs[0];
  }
  EXPECT_FALSE((*mirror)->HasCommit(last));
  // The ordinary fetch brings them.
  ASSERT_TRUE((*mirror)->Fetch(repo_->remote_path(), main, {}).ok());
  EXPECT_TRUE((*mirror)->HasCommit(last));
}

// A commit touching one folder among thousands: the local increment stores
// the big parent folder's tree as it is (zlib level 0, read back later
// without inflating) and deflates the rest. Issue #23: git_packbuilder
// deflated the 330 KiB tree of a 10,000-application monorepo at zlib's
// default level for every commit touching one application, ~10 ms of CPU,
// more than the rest of the fetch; the tree compresses to only ~70%.
TEST_F(Libgit2ClientTest, ALocalIncrementStoresALargeTreeAndDeflatesTheRest) {
  // Written and added at once (Commit adds file by file).
  for (int i = 0; i < 3000; ++i) {
    const std::filesystem::path folder = std::filesystem::path(repo_->work_path()) / absl::StrCat("apps/a", 10000 + i);
    std::filesystem::create_directories(folder);
    std::ofstream(folder / "config.yaml") << "app " << i << "\n";
  }
  repo_->Git({"add", "-A"});
  repo_->Commit({}, "three thousand folders");
  repo_->Push("main");
  const std::string mirror_path = dir_ + "/mirror.git";
  bool rebuilt = false;
  auto mirror = client_.OpenMirror(mirror_path, repo_->remote_path(), &rebuilt);
  ASSERT_TRUE(mirror.ok()) << mirror.status();
  git_repository* raw = nullptr;
  ASSERT_EQ(git_repository_open(&raw, mirror_path.c_str()), 0);
  RepositoryHandle handle(raw);
  auto fetch = [&]() {
    Credentials none;
    FetchLimits limits;
    CredentialPayload payload{&none, 0, repo_->remote_path(), &limits, ""};
    absl::StatusOr<bool> done =
        FetchLocalIncrement(handle.get(), repo_->remote_path(), {"+refs/heads/main:refs/heads/main"}, &payload);
    ASSERT_TRUE(done.ok()) << done.status();
    ASSERT_TRUE(*done);
  };
  fetch();
  const std::string text(20000, 'x');  // compresses to almost nothing
  const std::string sha = repo_->Commit({{"apps/a10007/config.yaml", text}}, "touch one");
  repo_->Push("main");
  fetch();
  repo_->Git({"--git-dir=" + mirror_path, "fsck", "--no-dangling"});
  EXPECT_EQ(repo_->Git({"--git-dir=" + mirror_path, "rev-parse", "refs/heads/main"}), sha);
  // `git verify-pack -v`: "<id> <type> <size> <size in the pack> <offset>".
  auto in_pack = [&](const std::string& id) -> std::pair<long, long> {
    for (const auto& e : std::filesystem::directory_iterator(mirror_path + "/objects/pack")) {
      if (e.path().extension() != ".idx") continue;
      std::string listed = repo_->Git({"verify-pack", "-v", e.path().string()});
      for (absl::string_view line : absl::StrSplit(listed, '\n')) {
        std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
        if (f.size() >= 4 && f[0] == id) return {std::stol(f[2]), std::stol(f[3])};
      }
    }
    return {-1, -1};
  };
  auto [tree_size, tree_packed] = in_pack(repo_->Git({"rev-parse", "HEAD:apps"}));
  ASSERT_GE(tree_size, static_cast<long>(kStoredTreeBytes));
  EXPECT_GT(tree_packed, tree_size) << "the large tree was deflated";
  auto [blob_size, blob_packed] = in_pack(repo_->Git({"rev-parse", "HEAD:apps/a10007/config.yaml"}));
  EXPECT_EQ(blob_size, 20000);
  EXPECT_LT(blob_packed, 1000) << "the blob was not deflated";
  auto [small_size, small_packed] = in_pack(repo_->Git({"rev-parse", "HEAD:apps/a10007"}));
  EXPECT_GT(small_size, 0);
  EXPECT_GT(small_packed, 0);
}

// A local increment past FetchLimits stops as the transport's fetch does:
// RESOURCE_EXHAUSTED naming the limit, nothing kept, the ref where it was.
TEST_F(Libgit2ClientTest, ALocalIncrementPastItsLimitsKeepsNothing) {
  bool rebuilt = false;
  auto mirror = client_.OpenMirror(dir_ + "/mirror.git", repo_->remote_path(), &rebuilt);
  ASSERT_TRUE(mirror.ok()) << mirror.status();
  ASSERT_TRUE((*mirror)->Fetch(repo_->remote_path(), {"+refs/heads/main:refs/heads/main"}, {}).ok());
  std::string next = repo_->Commit({{"apps/c/a.yaml", "a\n"}, {"apps/c/b.yaml", "b\n"}}, "five objects");
  repo_->Push("main");
  Libgit2Client few(FetchLimits{.max_bytes = 0, .max_objects = 3});
  auto bounded = few.OpenMirror(dir_ + "/mirror.git", repo_->remote_path(), &rebuilt);
  ASSERT_TRUE(bounded.ok()) << bounded.status();
  absl::Status s = (*bounded)->Fetch(repo_->remote_path(), {"+refs/heads/main:refs/heads/main"}, {});
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_NE(s.message().find("--max-fetch-objects"), std::string::npos) << s;
  EXPECT_FALSE((*bounded)->HasCommit(next));
  EXPECT_EQ(repo_->Git({"--git-dir=" + dir_ + "/mirror.git", "rev-parse", "refs/heads/main"}), first_);

  std::string big = repo_->Commit({{"apps/c/blob.bin", testing::IncompressibleBytes(2 << 20)}}, "two MiB");
  repo_->Push("main");
  Libgit2Client small(FetchLimits{.max_bytes = 1 << 20, .max_objects = 0});
  auto narrow = small.OpenMirror(dir_ + "/mirror.git", repo_->remote_path(), &rebuilt);
  ASSERT_TRUE(narrow.ok()) << narrow.status();
  s = (*narrow)->Fetch(repo_->remote_path(), {"+refs/heads/main:refs/heads/main"}, {});
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_NE(s.message().find("--max-fetch-bytes"), std::string::npos) << s;
  EXPECT_FALSE((*narrow)->HasCommit(big));
  EXPECT_EQ(PackFiles(dir_ + "/mirror.git"), 1) << "the stopped fetch's pack was kept";
}

}  // namespace
}  // namespace ferry::git
