#include "services/audit/chain_hasher.h"

#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "common/crypto/sha256.h"

namespace ferry::audit {
namespace {

TEST(ChainHasherTest, HashIsSha256OfRawPrevHashThenCanonicalBytes) {
  // sha256(32 zero bytes || "{}"), computed independently with Python's hashlib.
  absl::StatusOr<std::string> h = ChainHash(ZeroHash(), "{}");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(*h, "fb1634c4e6cd4b1f1afe3ce2d6ef080f7ac5d1f357d723ad4dfca782733b62db");
  EXPECT_NE(*ChainHash(ZeroHash(), "{}"), *ChainHash(std::string(63, '0') + "1", "{}"));
  EXPECT_EQ(ChainHash("XYZ", "{}").status().code(), absl::StatusCode::kInvalidArgument);
}

// One reusable hasher, the same hashes as ChainHash; a malformed prev_hash
// is refused.
TEST(ChainHasherTest, ChainHasherMatchesChainHashAndRefusesBadPrevHashes) {
  ChainHasher hasher;
  std::string hash;
  ASSERT_TRUE(hasher.Hash(ZeroHash(), "{}", &hash).ok());
  EXPECT_EQ(hash, "fb1634c4e6cd4b1f1afe3ce2d6ef080f7ac5d1f357d723ad4dfca782733b62db");
  const std::string prev = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  ASSERT_TRUE(hasher.Hash(prev, "{\"a\":1}", &hash).ok());
  EXPECT_EQ(hash, HexEncode(Sha256(absl::HexStringToBytes(prev) + "{\"a\":1}")));
  EXPECT_EQ(hash, *ChainHash(prev, "{\"a\":1}"));
  for (const std::string& bad : {std::string(63, '0'), std::string(65, '0'), std::string(64, 'A'),
                                 std::string(63, '0') + "g", std::string(63, '0') + "/", std::string(64, ' ')}) {
    EXPECT_EQ(hasher.Hash(bad, "{}", &hash).code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace ferry::audit
