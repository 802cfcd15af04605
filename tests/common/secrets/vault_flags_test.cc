// The --vault-* flags: what MakeVaultClient refuses before anything is sent.

#include "common/secrets/vault_flags.h"

#include <fstream>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "tests/support/fake_clock.h"
#include "tests/support/test_database.h"

namespace ferry::secrets {
namespace {

class VaultFlagsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ferry::testing::MakeTempDir("vault-flags");
    std::ofstream(dir_ + "/token") << "t\n";
    std::ofstream(dir_ + "/role") << "r\n";
    std::ofstream(dir_ + "/secret") << "s\n";
  }
  absl::Status Make(VaultFlags f) { return MakeVaultClient(f, &clock_).status(); }
  static void ExpectRefused(const absl::Status& s, const std::string& names) {
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), names)) << s;
  }
  std::string dir_;
  ferry::testing::FakeClock clock_;
};

TEST_F(VaultFlagsTest, NoAddressIsNoClient) {
  absl::StatusOr<std::unique_ptr<VaultKvClient>> c = MakeVaultClient({}, &clock_);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(*c, nullptr);
  EXPECT_FALSE(LookupOf(nullptr));
  ExpectRefused(Make({.token_file = dir_ + "/token"}), "needs --vault-address");
}

TEST_F(VaultFlagsTest, HttpsWithATokenOrAppRoleMakesAClient) {
  EXPECT_TRUE(Make({.address = "https://vault.example:8200", .token_file = dir_ + "/token"}).ok());
  EXPECT_TRUE(Make({.address = "https://vault.example",
                    .approle_role_id_file = dir_ + "/role",
                    .approle_secret_id_file = dir_ + "/secret"})
                  .ok());
}

TEST_F(VaultFlagsTest, PlainHttpOnlyToLoopbackAndOnlyWithTheTestOnlyFlag) {
  ExpectRefused(Make({.address = "http://vault.example:8200", .token_file = dir_ + "/token"}), "--vault-address");
  ExpectRefused(Make({.address = "http://127.0.0.1:8200", .token_file = dir_ + "/token"}), "must be https://");
  ExpectRefused(Make({.address = "http://vault.example:8200",
                      .token_file = dir_ + "/token",
                      .test_only_allow_http_to_loopback = true}),
                "must be https://");
  EXPECT_TRUE(Make({.address = "http://127.0.0.1:8200",
                    .token_file = dir_ + "/token",
                    .test_only_allow_http_to_loopback = true})
                  .ok());
  ExpectRefused(Make({.address = "ftp://vault.example", .token_file = dir_ + "/token"}), "--vault-address");
  ExpectRefused(Make({.address = "https://vault.example/v1/secret", .token_file = dir_ + "/token"}), "no user, path");
  ExpectRefused(Make({.address = "https://user@vault.example", .token_file = dir_ + "/token"}), "no user, path");
}

TEST_F(VaultFlagsTest, ExactlyOneWayToLogIn) {
  ExpectRefused(Make({.address = "https://v.example"}), "either --vault-token-file or");
  ExpectRefused(Make({.address = "https://v.example",
                      .token_file = dir_ + "/token",
                      .approle_role_id_file = dir_ + "/role",
                      .approle_secret_id_file = dir_ + "/secret"}),
                "either --vault-token-file or");
  ExpectRefused(Make({.address = "https://v.example", .approle_role_id_file = dir_ + "/role"}),
                "give both or neither");
}

TEST_F(VaultFlagsTest, NoTimeoutIsRefused) {
  VaultFlags f{.address = "https://v.example", .token_file = dir_ + "/token"};
  f.timeout = absl::ZeroDuration();
  ExpectRefused(Make(f), "--vault-timeout");
}

TEST_F(VaultFlagsTest, UnreadableFilesAreNamed) {
  ExpectRefused(Make({.address = "https://v.example", .token_file = dir_ + "/missing"}), "--vault-token-file");
  ExpectRefused(Make({.address = "https://v.example", .ca_file = dir_ + "/missing", .token_file = dir_ + "/token"}),
                "--vault-ca-file");
  ExpectRefused(Make({.address = "https://v.example",
                      .approle_role_id_file = dir_ + "/role",
                      .approle_secret_id_file = dir_ + "/missing"}),
                "--vault-approle-secret-id-file");
}

}  // namespace
}  // namespace ferry::secrets
