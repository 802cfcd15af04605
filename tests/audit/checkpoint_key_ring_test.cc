#include "services/audit/checkpoint_key_ring.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/test_database.h"

namespace ferry::audit {
namespace {

std::unique_ptr<CheckpointSigner> NewSigner() {
  auto signer = CheckpointSigner::GenerateEphemeral();
  EXPECT_TRUE(signer.ok()) << signer.status();
  return std::move(*signer);
}

v1::Checkpoint SignedBy(const CheckpointSigner& signer, int64_t sequence) {
  v1::Checkpoint c;
  c.set_sequence(sequence);
  c.set_head_hash(std::string(64, 'a'));
  c.set_signature(*signer.Sign(sequence, c.head_hash()));
  c.set_public_key_id(signer.public_key_id());
  return c;
}

TEST(CheckpointKeyRingTest, TrustsTheSignerAlwaysAndAnUntrustedKeyIsNamed) {
  auto current = NewSigner();
  auto other = NewSigner();
  CheckpointKeyRing ring(*current);
  EXPECT_TRUE(ring.Verify(SignedBy(*current, 7)).ok());
  absl::Status untrusted = ring.Verify(SignedBy(*other, 7));
  EXPECT_EQ(untrusted.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(untrusted.message().find("untrusted key " + other->public_key_id()), std::string::npos) << untrusted;
  v1::Checkpoint forged = SignedBy(*current, 7);
  forged.set_head_hash(std::string(64, 'b'));
  absl::Status bad = ring.Verify(forged);
  EXPECT_NE(bad.message().find("signature does not verify"), std::string::npos) << bad;
}

TEST(CheckpointKeyRingTest, OldKeysFromAFileOrTheDotPubFilesOfADirectoryVerifyTheirOwnCheckpoints) {
  auto old1 = NewSigner();
  auto old2 = NewSigner();
  auto current = NewSigner();
  const std::string dir = testing::MakeTempDir("ferry-key-ring");
  std::ofstream(dir + "/both.pem") << old1->public_key_pem() << old2->public_key_pem();
  CheckpointKeyRing from_file(*current);
  ASSERT_TRUE(from_file.AddFromPath(dir + "/both.pem").ok());
  EXPECT_EQ(from_file.key_ids().size(), 3u);
  EXPECT_TRUE(from_file.Verify(SignedBy(*old1, 3)).ok());
  EXPECT_TRUE(from_file.Verify(SignedBy(*old2, 5)).ok());
  EXPECT_TRUE(from_file.Verify(SignedBy(*current, 9)).ok());

  const std::string keys = testing::MakeTempDir("ferry-key-ring-dir");
  std::ofstream(keys + "/old1.pub") << old1->public_key_pem();
  std::ofstream(keys + "/private.pem") << "-----BEGIN PRIVATE KEY-----\nnot read\n-----END PRIVATE KEY-----\n";
  CheckpointKeyRing from_dir(*current);
  ASSERT_TRUE(from_dir.AddFromPath(keys).ok());
  EXPECT_TRUE(from_dir.Verify(SignedBy(*old1, 3)).ok());
  EXPECT_FALSE(from_dir.Verify(SignedBy(*old2, 5)).ok()) << "only *.pub files of a directory are read";
}

TEST(CheckpointKeyRingTest, AFileWithoutAPublicKeyIsRefusedNamingIt) {
  auto current = NewSigner();
  const std::string dir = testing::MakeTempDir("ferry-key-ring");
  std::ofstream(dir + "/empty.pub") << "nothing here\n";
  CheckpointKeyRing ring(*current);
  absl::Status s = ring.AddFromPath(dir + "/empty.pub");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find(dir + "/empty.pub"), std::string::npos) << s;
  EXPECT_EQ(ring.AddFromPath(dir + "/missing.pub").code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ferry::audit
