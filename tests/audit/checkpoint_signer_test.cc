#include "services/audit/checkpoint_signer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/support/test_database.h"

namespace ferry::audit {
namespace {

TEST(CheckpointSignerTest, SignsAndVerifiesAndRejectsOtherMessages) {
  bool generated = false;
  std::string dir = testing::MakeTempDir("ferry-audit-key");
  auto signer = CheckpointSigner::LoadOrGenerate(dir + "/key.pem", &generated);
  ASSERT_TRUE(signer.ok()) << signer.status();
  EXPECT_TRUE(generated);
  absl::StatusOr<std::string> sig = (*signer)->Sign(42, std::string(64, 'c'));
  ASSERT_TRUE(sig.ok()) << sig.status();
  EXPECT_EQ(sig->size(), 64u);
  EXPECT_TRUE((*signer)->Verify(42, std::string(64, 'c'), *sig));
  EXPECT_FALSE((*signer)->Verify(43, std::string(64, 'c'), *sig));
  EXPECT_FALSE((*signer)->Verify(42, std::string(64, 'd'), *sig));
  EXPECT_EQ(CheckpointMessage(42, "ab"), "ferry-audit-checkpoint/v1\n42\nab\n");
}

TEST(CheckpointSignerTest, GeneratedKeyIsPrivateAndReloadsAsTheSameKey) {
  std::string dir = testing::MakeTempDir("ferry-audit-key");
  bool generated = false;
  auto first = CheckpointSigner::LoadOrGenerate(dir + "/key.pem", &generated);
  ASSERT_TRUE(first.ok()) << first.status();
  struct stat st;
  ASSERT_EQ(stat((dir + "/key.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  ASSERT_EQ(stat((dir + "/key.pem.pub").c_str(), &st), 0);
  auto second = CheckpointSigner::LoadOrGenerate(dir + "/key.pem", &generated);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(generated);
  EXPECT_EQ((*first)->public_key_id(), (*second)->public_key_id());
  EXPECT_EQ((*first)->public_key_id().size(), 64u);
}

// A key on a read-only mount (a Kubernetes Secret) has no writable folder
// beside it: the service must start anyway, with the public key derived in
// memory. `<key>.pub` being a directory makes the write fail for root too.
TEST(CheckpointSignerTest, StartsWhenThePublicKeyCannotBeWrittenBesideTheKey) {
  std::string dir = testing::MakeTempDir("ferry-audit-key");
  bool generated = false;
  auto made = CheckpointSigner::LoadOrGenerate(dir + "/key.pem", &generated);
  ASSERT_TRUE(made.ok()) << made.status();
  ASSERT_EQ(std::remove((dir + "/key.pem.pub").c_str()), 0);
  ASSERT_EQ(mkdir((dir + "/key.pem.pub").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((dir + "/key.pem.pub/x").c_str(), 0755), 0);  // not empty: rename() onto it fails
  absl::Status pub_written;
  auto loaded = CheckpointSigner::LoadOrGenerate(dir + "/key.pem", &generated, &pub_written);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_FALSE(generated);
  EXPECT_FALSE(pub_written.ok());
  EXPECT_EQ((*loaded)->public_key_id(), (*made)->public_key_id());
  EXPECT_EQ((*loaded)->public_key_pem(), (*made)->public_key_pem());
  // No temporary file left behind either.
  struct stat st;
  EXPECT_NE(stat(absl::StrCat(dir, "/key.pem.pub.tmp.", getpid()).c_str(), &st), 0);
}

// An up-to-date .pub (shipped beside the key on a read-only mount) is not
// rewritten: the same file, untouched.
TEST(CheckpointSignerTest, LeavesAnUpToDatePublicKeyFileAlone) {
  std::string dir = testing::MakeTempDir("ferry-audit-key");
  bool generated = false;
  ASSERT_TRUE(CheckpointSigner::LoadOrGenerate(dir + "/key.pem", &generated).ok());
  struct stat before, after;
  ASSERT_EQ(stat((dir + "/key.pem.pub").c_str(), &before), 0);
  absl::Status pub_written = absl::UnknownError("not set");
  ASSERT_TRUE(CheckpointSigner::LoadOrGenerate(dir + "/key.pem", &generated, &pub_written).ok());
  EXPECT_TRUE(pub_written.ok()) << pub_written;
  ASSERT_EQ(stat((dir + "/key.pem.pub").c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);
}

TEST(CheckpointSignerTest, RefusesAFileThatIsNotAnEd25519Key) {
  auto signer = CheckpointSigner::FromPem("-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n");
  EXPECT_EQ(signer.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ferry::audit
