#include "common/secrets/sealed_box.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "common/crypto/sha256.h"

namespace ferry::secrets {
namespace {

TEST(SealedBoxTest, OnlyTheDeployersKeyOpensWhatIsSealedToItsPublicKey) {
  absl::StatusOr<SealedBoxKey> key = SealedBoxKey::Generate();
  absl::StatusOr<SealedBoxKey> other = SealedBoxKey::Generate();
  ASSERT_TRUE(key.ok() && other.ok());
  absl::StatusOr<std::string> sealed = Seal("hunter2", key->PublicKeyText());
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_TRUE(absl::StartsWith(*sealed, kSealedPrefix));
  EXPECT_FALSE(absl::StrContains(*sealed, "hunter2"));
  EXPECT_TRUE(LooksSealed(*sealed));
  absl::StatusOr<std::string> opened = key->Open(*sealed);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "hunter2");
  absl::StatusOr<std::string> wrong = other->Open(*sealed);
  ASSERT_FALSE(wrong.ok());
  EXPECT_TRUE(absl::StrContains(wrong.status().message(), "not sealed to this deployer's key")) << wrong.status();
  // Sealing is randomised: the same value seals differently each time.
  EXPECT_NE(*Seal("hunter2", key->PublicKeyText()), *sealed);
}

TEST(SealedBoxTest, AnAlteredOrTruncatedSealedValueDoesNotOpen) {
  SealedBoxKey key = *SealedBoxKey::Generate();
  std::string sealed = *Seal("a database password", key.PublicKeyText());
  std::string altered = sealed;
  size_t i = std::string(kSealedPrefix).size() + 10;
  altered[i] = altered[i] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(key.Open(altered).ok());
  EXPECT_FALSE(key.Open(sealed.substr(0, sealed.size() - 12)).ok());
  EXPECT_FALSE(key.Open("plain text").ok());
  EXPECT_FALSE(key.Open(std::string(kSealedPrefix) + "!!!").ok());
}

TEST(SealedBoxTest, TheKeyFileRoundTripsAndBadKeysAreRefusedWithoutQuotingThem) {
  SealedBoxKey key = *SealedBoxKey::Generate();
  absl::StatusOr<SealedBoxKey> again = SealedBoxKey::FromText(key.SecretKeyText());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->PublicKeyText(), key.PublicKeyText());
  EXPECT_EQ(*again->Open(*Seal("v", key.PublicKeyText())), "v");
  absl::StatusOr<SealedBoxKey> bad = SealedBoxKey::FromText("ferry-secrets-key/v1:c2hvcnQ=");
  ASSERT_FALSE(bad.ok());
  EXPECT_FALSE(absl::StrContains(bad.status().message(), "c2hvcnQ"));
  EXPECT_FALSE(SealedBoxKey::FromText("AGE-SECRET-KEY-1XYZ").ok());
  EXPECT_FALSE(Seal("v", "ferry-secrets-public-key/v1:AAAA").ok());
}

TEST(SealedBoxTest, DigestsAreKeyedSoAGuessCannotBeCheckedWithoutTheKey) {
  SealedBoxKey key = *SealedBoxKey::Generate();
  SealedBoxKey other = *SealedBoxKey::Generate();
  std::string d = key.Digest("1234");
  EXPECT_TRUE(absl::StartsWith(d, "hmac-sha256:")) << d;
  EXPECT_EQ(d.size(), std::string("hmac-sha256:").size() + 64);
  EXPECT_EQ(key.Digest("1234"), d);                       // stable: drift and change detection work
  EXPECT_NE(key.Digest("1235"), d);                       // a changed value shows
  EXPECT_NE(other.Digest("1234"), d);                     // another key, another digest
  EXPECT_FALSE(absl::StrContains(d, Sha256Hex("1234")));  // not the unkeyed hash anyone can compute
  // The same key read back from its file gives the same digests (restarts).
  EXPECT_EQ(SealedBoxKey::FromText(key.SecretKeyText())->Digest("1234"), d);
}

}  // namespace
}  // namespace ferry::secrets
