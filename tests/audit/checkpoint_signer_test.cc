#include "services/audit/checkpoint_signer.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

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

TEST(CheckpointSignerTest, RefusesAFileThatIsNotAnEd25519Key) {
  auto signer = CheckpointSigner::FromPem("-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n");
  EXPECT_EQ(signer.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ferry::audit
