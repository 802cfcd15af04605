#include "common/auth/policy_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include <prometheus/registry.h>

#include "tests/support/fake_clock.h"
#include "tests/support/test_database.h"

namespace ferry::auth {
namespace {

using ::ferry::testing::FakeClock;
using ::testing::HasSubstr;

constexpr absl::Duration kPoll = absl::Seconds(2);

const char kAliceViewer[] = "bindings:\n  - subjects: [\"user:alice\"]\n    role: viewer\n";
const char kAliceAdmin[] = "bindings:\n  - subjects: [\"user:alice\"]\n    role: admin\n";
// Same length as kAliceAdmin, so that only the inode or mtime tells them apart.
const char kBobbyAdmin[] = "bindings:\n  - subjects: [\"user:bobby\"]\n    role: admin\n";
const char kBad[] = "bindings:\n  - subjects: [\"user:alice\"]\n    role: owner\n";

void Write(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  ASSERT_TRUE(out) << path;
}

// Sets the file's modification time (to make changes the clock's
// granularity could hide, or to hide them on purpose).
void SetMtime(const std::string& path, int64_t seconds) {
  struct timespec times[2];
  times[0].tv_sec = seconds;
  times[0].tv_nsec = 0;
  times[1] = times[0];
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
}

// Writes a whole new file beside `path` and renames it over `path`, as
// editors do.
void ReplaceByRename(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  Write(tmp, text);
  ASSERT_EQ(std::rename(tmp.c_str(), path.c_str()), 0);
}

bool Allows(const FilePolicySource& source, const std::string& user, Permission p) {
  return source.Current()->Allows(UserPrincipal(user), p, Scope::Global());
}

double Reloads(prometheus::Registry& registry, const std::string& result) {
  for (const auto& family : registry.Collect()) {
    if (family.name != "ferry_access_policy_reloads_total") continue;
    for (const auto& metric : family.metric) {
      for (const auto& label : metric.label) {
        if (label.name == "result" && label.value == result) return metric.counter.value;
      }
    }
  }
  return -1;
}

class FilePolicySourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ferry::testing::MakeTempDir("policy_file_test");
    path_ = dir_ + "/access-policy.yaml";
  }

  // Loads path_ with the fake clock and starts the poll; the loop is then
  // waiting for its first poll.
  std::unique_ptr<FilePolicySource> Started() {
    auto source = FilePolicySource::Load(path_, kPoll, &clock_, &registry_);
    EXPECT_TRUE(source.ok()) << source.status();
    if (!source.ok()) return nullptr;
    (*source)->Start();
    clock_.AwaitSleeps(++sleeps_);
    return *std::move(source);
  }

  // Lets one poll run and waits until it is done.
  void PollOnce() {
    clock_.Advance(kPoll);
    clock_.AwaitSleeps(++sleeps_);
  }

  std::string dir_;
  std::string path_;
  FakeClock clock_;
  prometheus::Registry registry_;
  uint64_t sleeps_ = 0;
};

TEST_F(FilePolicySourceTest, LoadReadsThePolicy) {
  Write(path_, kAliceAdmin);
  auto source = FilePolicySource::Load(path_);
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_TRUE(Allows(**source, "alice", Permission::kAdmin));
  EXPECT_FALSE(Allows(**source, "bob", Permission::kView));
  EXPECT_EQ((*source)->path(), path_);
}

TEST_F(FilePolicySourceTest, LoadOfAMissingFileFails) {
  auto source = FilePolicySource::Load(path_);
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(source.status().message(), HasSubstr(path_));
}

TEST_F(FilePolicySourceTest, LoadOfABadFileNamesFileLineAndProblem) {
  Write(path_, kBad);
  auto source = FilePolicySource::Load(path_);
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(source.status().message(), HasSubstr(path_ + ":3: bindings[0].role: unknown role \"owner\""));
}

TEST_F(FilePolicySourceTest, LoadRefusesAFileOverOneMebibyte) {
  Write(path_, std::string(kAliceAdmin) + "#" + std::string(kMaxPolicyBytes, 'x') + "\n");
  auto source = FilePolicySource::Load(path_);
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(source.status().message(), HasSubstr("more than the 1048576 allowed"));
}

TEST_F(FilePolicySourceTest, LoadRefusesAFifoWithoutBlocking) {
  ASSERT_EQ(mkfifo(path_.c_str(), 0600), 0);
  auto source = FilePolicySource::Load(path_);
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(source.status().message(), HasSubstr("is not a regular file"));
}

TEST_F(FilePolicySourceTest, ReloadReadsTheFileNow) {
  Write(path_, kAliceViewer);
  auto source = FilePolicySource::Load(path_, kPoll, &clock_, &registry_);
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_FALSE(Allows(**source, "alice", Permission::kAdmin));
  Write(path_, kAliceAdmin);
  ASSERT_TRUE((*source)->Reload().ok());
  EXPECT_TRUE(Allows(**source, "alice", Permission::kAdmin));
  EXPECT_EQ(Reloads(registry_, "ok"), 1);
  // Reload re-reads even when nothing changed.
  ASSERT_TRUE((*source)->Reload().ok());
  EXPECT_EQ(Reloads(registry_, "ok"), 2);
}

TEST_F(FilePolicySourceTest, ReloadOfABadFileKeepsThePreviousPolicy) {
  Write(path_, kAliceAdmin);
  auto source = FilePolicySource::Load(path_, kPoll, &clock_, &registry_);
  ASSERT_TRUE(source.ok()) << source.status();
  const std::shared_ptr<const Policy> before = (*source)->Current();
  Write(path_, kBad);
  absl::Status reload = (*source)->Reload();
  EXPECT_EQ(reload.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(reload.message(), HasSubstr(path_ + ":3: bindings[0].role: unknown role \"owner\""));
  EXPECT_EQ((*source)->Current(), before);
  EXPECT_TRUE(Allows(**source, "alice", Permission::kAdmin));
  EXPECT_EQ(Reloads(registry_, "error"), 1);
  EXPECT_EQ(Reloads(registry_, "ok"), 0);
  // A missing file also keeps it.
  ASSERT_EQ(unlink(path_.c_str()), 0);
  EXPECT_EQ((*source)->Reload().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ((*source)->Current(), before);
}

TEST_F(FilePolicySourceTest, PollDoesNotReReadAnUnchangedFile) {
  Write(path_, kAliceAdmin);
  auto source = Started();
  ASSERT_NE(source, nullptr);
  const std::shared_ptr<const Policy> before = source->Current();
  for (int i = 0; i < 3; ++i) PollOnce();
  EXPECT_EQ(source->Current(), before);
  EXPECT_EQ(Reloads(registry_, "ok"), 0);
  EXPECT_EQ(Reloads(registry_, "error"), 0);
}

TEST_F(FilePolicySourceTest, PollReloadsAFileChangedInPlace) {
  Write(path_, kAliceViewer);
  SetMtime(path_, 1'600'000'000);
  auto source = Started();
  ASSERT_NE(source, nullptr);
  Write(path_, kAliceAdmin);  // same inode, other size and mtime
  EXPECT_FALSE(Allows(*source, "alice", Permission::kAdmin));  // not before the poll
  PollOnce();
  EXPECT_TRUE(Allows(*source, "alice", Permission::kAdmin));
  EXPECT_EQ(Reloads(registry_, "ok"), 1);
}

TEST_F(FilePolicySourceTest, PollSeesAChangeOfMtimeAlone) {
  Write(path_, kAliceAdmin);
  SetMtime(path_, 1'600'000'000);
  auto source = Started();
  ASSERT_NE(source, nullptr);
  Write(path_, kBobbyAdmin);  // same inode, same size
  SetMtime(path_, 1'600'000'001);
  PollOnce();
  EXPECT_TRUE(Allows(*source, "bobby", Permission::kAdmin));
  EXPECT_FALSE(Allows(*source, "alice", Permission::kAdmin));
}

TEST_F(FilePolicySourceTest, PollDetectsReplaceByRename) {
  Write(path_, kAliceAdmin);
  SetMtime(path_, 1'600'000'000);
  auto source = Started();
  ASSERT_NE(source, nullptr);
  // Same size and mtime: only the inode tells.
  ReplaceByRename(path_, kBobbyAdmin);
  SetMtime(path_, 1'600'000'000);
  PollOnce();
  EXPECT_TRUE(Allows(*source, "bobby", Permission::kAdmin));
  EXPECT_FALSE(Allows(*source, "alice", Permission::kAdmin));
}

TEST_F(FilePolicySourceTest, PollFollowsAConfigMapSymlinkSwap) {
  // The layout Kubernetes mounts a ConfigMap with:
  //   access-policy.yaml -> ..data/access-policy.yaml, ..data -> ..v1
  ASSERT_EQ(mkdir((dir_ + "/..v1").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((dir_ + "/..v2").c_str(), 0755), 0);
  Write(dir_ + "/..v1/access-policy.yaml", kAliceAdmin);
  Write(dir_ + "/..v2/access-policy.yaml", kBobbyAdmin);
  SetMtime(dir_ + "/..v1/access-policy.yaml", 1'600'000'000);
  SetMtime(dir_ + "/..v2/access-policy.yaml", 1'600'000'000);
  ASSERT_EQ(symlink("..v1", (dir_ + "/..data").c_str()), 0);
  ASSERT_EQ(symlink("..data/access-policy.yaml", path_.c_str()), 0);
  auto source = Started();
  ASSERT_NE(source, nullptr);
  EXPECT_TRUE(Allows(*source, "alice", Permission::kAdmin));
  // Swap ..data atomically, as the kubelet does.
  ASSERT_EQ(symlink("..v2", (dir_ + "/..data_tmp").c_str()), 0);
  ASSERT_EQ(std::rename((dir_ + "/..data_tmp").c_str(), (dir_ + "/..data").c_str()), 0);
  PollOnce();
  EXPECT_TRUE(Allows(*source, "bobby", Permission::kAdmin));
  EXPECT_FALSE(Allows(*source, "alice", Permission::kAdmin));
}

TEST_F(FilePolicySourceTest, PollKeepsThePreviousPolicyOnABadFileAndTriesOncePerChange) {
  Write(path_, kAliceAdmin);
  auto source = Started();
  ASSERT_NE(source, nullptr);
  const std::shared_ptr<const Policy> before = source->Current();
  ReplaceByRename(path_, kBad);
  PollOnce();
  EXPECT_EQ(source->Current(), before);
  EXPECT_EQ(Reloads(registry_, "error"), 1);
  // Not re-read (nor logged again) until it changes.
  PollOnce();
  PollOnce();
  EXPECT_EQ(Reloads(registry_, "error"), 1);
  // A missing file keeps it too.
  ASSERT_EQ(unlink(path_.c_str()), 0);
  PollOnce();
  EXPECT_EQ(source->Current(), before);
  EXPECT_EQ(Reloads(registry_, "error"), 2);
  PollOnce();
  EXPECT_EQ(Reloads(registry_, "error"), 2);
  // Fixed: picked up.
  ReplaceByRename(path_, kBobbyAdmin);
  PollOnce();
  EXPECT_TRUE(Allows(*source, "bobby", Permission::kAdmin));
  EXPECT_EQ(Reloads(registry_, "ok"), 1);
}

TEST_F(FilePolicySourceTest, StopEndsThePoll) {
  Write(path_, kAliceViewer);
  auto source = Started();
  ASSERT_NE(source, nullptr);
  source->Stop();
  source->Stop();  // idempotent
  ReplaceByRename(path_, kAliceAdmin);
  clock_.Advance(kPoll * 3);
  EXPECT_FALSE(Allows(*source, "alice", Permission::kAdmin));
  // Reload still works without the poll.
  ASSERT_TRUE(source->Reload().ok());
  EXPECT_TRUE(Allows(*source, "alice", Permission::kAdmin));
}

TEST_F(FilePolicySourceTest, RefusesANonPositivePoll) {
  Write(path_, kAliceViewer);
  EXPECT_EQ(FilePolicySource::Load(path_, absl::ZeroDuration()).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ferry::auth
