// VaultKvClient against a real Vault-API server (`server -dev` on a loopback
// port: OpenBao from scripts/install-openbao, or $FERRY_VAULT_BIN): KV v2
// reads by token and by AppRole, re-login, a revoked secret_id, 404 versus
// 403, and TLS verification with the dev server's own CA.

#include <fstream>

#include <gtest/gtest.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/clock/clock.h"
#include "common/secrets/curl_vault_http.h"
#include "common/secrets/vault_flags.h"
#include "common/secrets/vault_kv_client.h"
#include "tests/support/fake_clock.h"
#include "tests/support/service_process.h"
#include "tests/support/test_database.h"
#include "tests/support/vault_dev_server.h"

namespace ferry::secrets {
namespace {

using ferry::testing::VaultDevServer;

constexpr char kGitToken[] = "ghp-vault-kept-token-5e1f";

class VaultIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<VaultDevServer>> v = VaultDevServer::Start();
    ASSERT_TRUE(v.ok()) << v.status();
    vault_ = std::move(*v);
    dir_ = ferry::testing::MakeTempDir("vault-it");
    ASSERT_TRUE(vault_->WriteKv("team/git", {{"token", kGitToken}, {"username", "ferry"}}).ok());
    ASSERT_TRUE(vault_->WriteKv("other/db", {{"password", "not-for-ferry"}}).ok());
    ASSERT_TRUE(vault_->ReadPolicy("ferry-git", "team/*").ok());
  }

  std::string WriteFile(const std::string& name, const std::string& content) {
    std::ofstream(dir_ + "/" + name) << content << "\n";
    return dir_ + "/" + name;
  }

  std::unique_ptr<VaultKvClient> Client(VaultFlags flags, const Clock* clock) {
    flags.address = vault_->address();
    flags.test_only_allow_http_to_loopback = true;
    flags.cache_ttl = absl::ZeroDuration();
    absl::StatusOr<std::unique_ptr<VaultKvClient>> c = MakeVaultClient(flags, clock);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }

  std::unique_ptr<VaultDevServer> vault_;
  std::string dir_;
  SystemClock clock_;
};

TEST_F(VaultIntegrationTest, ReadsAFieldWithATokenFromAFile) {
  absl::StatusOr<std::string> token = vault_->Token("ferry-git", 3600);
  ASSERT_TRUE(token.ok()) << token.status();
  auto client = Client({.token_file = WriteFile("token", *token)}, &clock_);
  ASSERT_NE(client, nullptr);
  absl::StatusOr<std::string> v = client->Read("team/git", "token");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, kGitToken);
  EXPECT_EQ(*client->Read("team/git", "username"), "ferry");
}

TEST_F(VaultIntegrationTest, MissingPathIsNotFoundAndAForbiddenOneIsPermissionDenied) {
  absl::StatusOr<std::string> token = vault_->Token("ferry-git", 3600);
  ASSERT_TRUE(token.ok()) << token.status();
  auto client = Client({.token_file = WriteFile("token", *token)}, &clock_);
  ASSERT_NE(client, nullptr);

  absl::Status missing = client->Read("team/nope", "token").status();
  EXPECT_TRUE(absl::IsNotFound(missing)) << missing;
  EXPECT_TRUE(absl::StrContains(missing.message(), "\"secret/team/nope\"")) << missing;

  absl::Status no_field = client->Read("team/git", "password").status();
  EXPECT_TRUE(absl::IsNotFound(no_field)) << no_field;
  EXPECT_TRUE(absl::StrContains(no_field.message(), "\"password\"")) << no_field;
  EXPECT_FALSE(absl::StrContains(no_field.ToString(), kGitToken)) << no_field;

  absl::Status forbidden = client->Read("other/db", "password").status();
  EXPECT_TRUE(absl::IsPermissionDenied(forbidden)) << forbidden;
  EXPECT_TRUE(absl::StrContains(forbidden.message(), "\"secret/other/db\"")) << forbidden;
  EXPECT_FALSE(absl::StrContains(forbidden.ToString(), "not-for-ferry")) << forbidden;

  ASSERT_TRUE(vault_->Call("DELETE", "secret/data/team/git").ok());  // soft-delete the latest version
  absl::Status deleted = client->Read("team/git", "token").status();
  EXPECT_TRUE(absl::IsNotFound(deleted)) << deleted;
  EXPECT_TRUE(absl::StrContains(deleted.message(), "deleted or destroyed")) << deleted;
}

TEST_F(VaultIntegrationTest, ARevokedTokenIsPermissionDeniedAndARotatedFileIsPickedUp) {
  absl::StatusOr<std::string> token = vault_->Token("ferry-git", 3600);
  ASSERT_TRUE(token.ok()) << token.status();
  const std::string file = WriteFile("token", *token);
  auto client = Client({.token_file = file}, &clock_);
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Read("team/git", "token").ok());
  ASSERT_TRUE(vault_->Call("POST", "auth/token/revoke", {{"token", *token}}).ok());
  absl::Status revoked = client->Read("team/git", "token").status();
  EXPECT_TRUE(absl::IsPermissionDenied(revoked)) << revoked;
  EXPECT_FALSE(absl::StrContains(revoked.ToString(), *token)) << revoked;

  absl::StatusOr<std::string> next = vault_->Token("ferry-git", 3600);
  ASSERT_TRUE(next.ok()) << next.status();
  WriteFile("token", *next);  // as Vault Agent would
  absl::StatusOr<std::string> v = client->Read("team/git", "token");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, kGitToken);
}

TEST_F(VaultIntegrationTest, AppRoleLogsInReadsLogsInAgainAndARevokedSecretIdIsAClearError) {
  absl::StatusOr<std::string> role_id = vault_->AppRole("ferry", "ferry-git", 600);
  ASSERT_TRUE(role_id.ok()) << role_id.status();
  absl::StatusOr<std::string> secret_id = vault_->NewSecretId("ferry");
  ASSERT_TRUE(secret_id.ok()) << secret_id.status();
  ferry::testing::FakeClock clock(absl::Now());
  auto client = Client({.approle_role_id_file = WriteFile("role-id", *role_id),
                        .approle_secret_id_file = WriteFile("secret-id", *secret_id)},
                       &clock);
  ASSERT_NE(client, nullptr);
  absl::StatusOr<std::string> v = client->Read("team/git", "token");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, kGitToken);
  EXPECT_EQ(client->logins(), 1);

  // 3/4 of the 600 s lease: a new login before the next read.
  clock.Advance(absl::Seconds(451));
  ASSERT_TRUE(client->Read("team/git", "token").ok());
  EXPECT_EQ(client->logins(), 2);

  // The secret_id destroyed and the tokens it gave revoked: the next read
  // is refused, the login again is refused, and the error says so.
  ASSERT_TRUE(vault_->Call("POST", "auth/approle/role/ferry/secret-id/destroy", {{"secret_id", *secret_id}}).ok());
  ASSERT_TRUE(vault_->Call("PUT", "sys/leases/revoke-prefix/auth/approle/login").ok());
  absl::Status s = client->Read("team/git", "token").status();
  EXPECT_TRUE(absl::IsPermissionDenied(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "AppRole login at auth/approle/login was refused")) << s;
  EXPECT_FALSE(absl::StrContains(s.ToString(), *secret_id)) << s;
  EXPECT_FALSE(absl::StrContains(s.ToString(), *role_id)) << s;

  // A new secret_id in the file: reads work again without a restart.
  absl::StatusOr<std::string> fresh = vault_->NewSecretId("ferry");
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  WriteFile("secret-id", *fresh);
  v = client->Read("team/git", "token");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, kGitToken);
}

TEST_F(VaultIntegrationTest, AStoppedVaultIsUnavailable) {
  absl::StatusOr<std::string> token = vault_->Token("ferry-git", 3600);
  ASSERT_TRUE(token.ok()) << token.status();
  auto client = Client({.token_file = WriteFile("token", *token), .timeout = absl::Seconds(2)}, &clock_);
  ASSERT_NE(client, nullptr);
  vault_.reset();
  absl::Status s = client->Read("team/git", "token").status();
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
}

// TLS: the dev server's own CA verifies; without it (the system's CAs) the
// certificate is refused and nothing is read.
TEST(VaultTlsTest, VerifiesTheServerWithTheGivenCaAndRefusesItWithout) {
  const std::string dir = ferry::testing::MakeTempDir("vault-tls");
  absl::StatusOr<std::unique_ptr<VaultDevServer>> v = VaultDevServer::Start(/*tls_dir=*/dir);
  ASSERT_TRUE(v.ok()) << v.status();
  const VaultDevServer& vault = **v;
  ferry::testing::CommandResult put = ferry::testing::RunCommand(
      {VaultDevServer::BinaryPath(), "kv", "put", "-address=" + vault.address(), "secret/team/git",
       absl::StrCat("token=", kGitToken)},
      absl::Seconds(30),
      {"VAULT_CACERT=" + vault.ca_file(), "VAULT_TOKEN=" + vault.root_token(), "BAO_CACERT=" + vault.ca_file(),
       "BAO_TOKEN=" + vault.root_token(), "HOME=" + dir});
  ASSERT_EQ(put.exit_code, 0) << put.output;
  std::ofstream(dir + "/token") << vault.root_token();
  SystemClock clock;

  absl::StatusOr<std::unique_ptr<VaultKvClient>> trusting =
      MakeVaultClient({.address = vault.address(), .ca_file = vault.ca_file(), .token_file = dir + "/token"}, &clock);
  ASSERT_TRUE(trusting.ok()) << trusting.status();
  absl::StatusOr<std::string> read = (*trusting)->Read("team/git", "token");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, kGitToken);

  absl::StatusOr<std::unique_ptr<VaultKvClient>> system_cas =
      MakeVaultClient({.address = vault.address(), .token_file = dir + "/token"}, &clock);
  ASSERT_TRUE(system_cas.ok()) << system_cas.status();
  absl::Status refused = (*system_cas)->Read("team/git", "token").status();
  EXPECT_TRUE(absl::IsUnavailable(refused)) << refused;
  EXPECT_TRUE(absl::StrContains(absl::AsciiStrToLower(refused.message()), "certificate")) << refused;
}

}  // namespace
}  // namespace ferry::secrets
