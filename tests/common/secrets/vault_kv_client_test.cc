// VaultKvClient against a scripted VaultHttp: parsing, error codes, the
// token's life (re-login before the lease ends and after a 403), the cache,
// and that no secret ever reaches a message.

#include "common/secrets/vault_kv_client.h"

#include <deque>
#include <fstream>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/concurrency/mutex.h"
#include "common/secrets/vault_responses.h"
#include "tests/support/fake_clock.h"
#include "tests/support/test_database.h"

namespace ferry::secrets {
namespace {

constexpr char kSecretValue[] = "s3cr3t-value-never-shown";
constexpr char kRoleId[] = "role-id-never-shown";
constexpr char kSecretId[] = "secret-id-never-shown";

std::string KvAnswer(const std::string& data_json) {
  return absl::StrCat(R"({"request_id":"x","lease_id":"","renewable":false,"lease_duration":0,"data":{"data":)",
                      data_json, R"(,"metadata":{"created_time":"2026-01-01T00:00:00Z","deletion_time":"",)",
                      R"("destroyed":false,"version":3}},"wrap_info":null,"warnings":null,"auth":null})");
}

std::string LoginAnswer(const std::string& token, int lease_seconds) {
  return absl::StrCat(R"({"auth":{"client_token":")", token, R"(","accessor":"a","policies":["default"],)",
                      R"("lease_duration":)", lease_seconds, R"(,"renewable":true}})");
}

struct Request {
  std::string method, path, token, body;
};

// Answers requests from a script, in order, and records them.
class ScriptedHttp final : public VaultHttp {
 public:
  void Then(int status, std::string body) {
    MutexLock l(&mu_);
    script_.push_back({VaultResponse{status, std::move(body)}, absl::OkStatus()});
  }
  void ThenFail(absl::Status s) {
    MutexLock l(&mu_);
    script_.push_back({VaultResponse{}, std::move(s)});
  }

  absl::StatusOr<VaultResponse> Send(const std::string& method, const std::string& api_path, const std::string& token,
                                     const std::string& body) override {
    MutexLock l(&mu_);
    requests_.push_back({method, api_path, token, body});
    if (script_.empty()) return absl::InternalError("test: no answer scripted");
    auto [response, failure] = script_.front();
    script_.pop_front();
    if (!failure.ok()) return failure;
    return response;
  }
  std::vector<Request> requests() {
    MutexLock l(&mu_);
    return requests_;
  }

 private:
  Mutex mu_;
  std::deque<std::pair<VaultResponse, absl::Status>> script_ ABSL_GUARDED_BY(mu_);
  std::vector<Request> requests_ ABSL_GUARDED_BY(mu_);
};

class VaultKvClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ferry::testing::MakeTempDir("vault-kv");
    Write("token", "hvs.root-token\n");
    Write("role-id", std::string(kRoleId) + "\n");
    Write("secret-id", kSecretId);
  }
  void Write(const std::string& name, const std::string& content) {
    std::ofstream(dir_ + "/" + name) << content;
  }
  std::unique_ptr<VaultKvClient> TokenClient(absl::Duration ttl = absl::Seconds(30)) {
    VaultKvOptions o;
    o.auth.kind = VaultAuth::Kind::kToken;
    o.auth.token_file = dir_ + "/token";
    o.cache_ttl = ttl;
    return Make(std::move(o));
  }
  std::unique_ptr<VaultKvClient> AppRoleClient(absl::Duration ttl = absl::ZeroDuration()) {
    VaultKvOptions o;
    o.auth.kind = VaultAuth::Kind::kAppRole;
    o.auth.role_id_file = dir_ + "/role-id";
    o.auth.secret_id_file = dir_ + "/secret-id";
    o.cache_ttl = ttl;
    return Make(std::move(o));
  }
  std::unique_ptr<VaultKvClient> Make(VaultKvOptions o) {
    auto http = std::make_unique<ScriptedHttp>();
    http_ = http.get();
    return std::make_unique<VaultKvClient>(std::move(http), std::move(o), &clock_);
  }
  static void ExpectNoSecret(const absl::Status& s) {
    for (const char* secret : {kSecretValue, kRoleId, kSecretId, "hvs.root-token"}) {
      EXPECT_FALSE(absl::StrContains(s.ToString(), secret)) << s;
    }
  }

  std::string dir_;
  ferry::testing::FakeClock clock_;
  ScriptedHttp* http_ = nullptr;
};

TEST_F(VaultKvClientTest, ReadsAFieldOfTheLatestVersionWithTheTokenFromTheFile) {
  auto client = TokenClient();
  http_->Then(200, KvAnswer(R"({"token":"s3cr3t-value-never-shown","user":"git"})"));
  absl::StatusOr<std::string> v = client->Read("team/git", "token");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, kSecretValue);
  ASSERT_EQ(http_->requests().size(), 1u);
  EXPECT_EQ(http_->requests()[0].method, "GET");
  EXPECT_EQ(http_->requests()[0].path, "/v1/secret/data/team/git");
  EXPECT_EQ(http_->requests()[0].token, "hvs.root-token");  // trailing newline dropped
}

TEST_F(VaultKvClientTest, PercentEncodesPathSegments) {
  auto client = TokenClient();
  http_->Then(200, KvAnswer(R"({"f":"v"})"));
  ASSERT_TRUE(client->Read("a b/c?d#e%", "f").ok());
  EXPECT_EQ(http_->requests()[0].path, "/v1/secret/data/a%20b/c%3Fd%23e%25");
}

TEST_F(VaultKvClientTest, MissingSecretIsNotFoundNamingThePath) {
  auto client = TokenClient();
  http_->Then(404, R"({"errors":[]})");
  absl::Status s = client->Read("team/nope", "token").status();
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "secret/team/nope")) << s;
}

TEST_F(VaultKvClientTest, DeletedLatestVersionIsNotFoundSayingSo) {
  auto client = TokenClient();
  http_->Then(404, R"({"data":{"data":null,"metadata":{"deletion_time":"2026-01-01T00:00:00Z","version":2}}})");
  absl::Status s = client->Read("team/git", "token").status();
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "deleted or destroyed")) << s;
}

TEST_F(VaultKvClientTest, MissingFieldIsNotFoundNamingPathAndFieldNotOtherValues) {
  auto client = TokenClient();
  http_->Then(200, KvAnswer(R"({"password":"s3cr3t-value-never-shown"})"));
  absl::Status s = client->Read("team/git", "token").status();
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "secret/team/git")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "\"token\"")) << s;
  ExpectNoSecret(s);
}

TEST_F(VaultKvClientTest, NonStringFieldIsFailedPrecondition) {
  auto client = TokenClient();
  http_->Then(200, KvAnswer(R"({"token":{"nested":"s3cr3t-value-never-shown"}})"));
  absl::Status s = client->Read("team/git", "token").status();
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  ExpectNoSecret(s);
}

TEST_F(VaultKvClientTest, KvVersion1AnswerIsRefusedAsNotVersion2) {
  auto client = TokenClient();
  http_->Then(200, R"({"data":{"token":"s3cr3t-value-never-shown"}})");
  absl::Status s = client->Read("team/git", "token").status();
  EXPECT_TRUE(absl::IsInternal(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "KV v2")) << s;
  ExpectNoSecret(s);
}

TEST_F(VaultKvClientTest, ForbiddenAfterAFreshLoginIsPermissionDeniedAndDistinctFromNotFound) {
  auto client = TokenClient();
  http_->Then(403, R"({"errors":["permission denied"]})");
  http_->Then(403, R"({"errors":["permission denied"]})");
  absl::Status s = client->Read("team/git", "token").status();
  EXPECT_TRUE(absl::IsPermissionDenied(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "secret/team/git")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "permission denied")) << s;
  EXPECT_EQ(client->logins(), 2);  // the token file was read again before giving up
  ExpectNoSecret(s);
}

TEST_F(VaultKvClientTest, ARotatedTokenFileIsPickedUpAfterA403) {
  auto client = TokenClient(absl::ZeroDuration());
  http_->Then(200, KvAnswer(R"({"token":"one"})"));
  ASSERT_TRUE(client->Read("p", "token").ok());
  Write("token", "hvs.rotated");
  http_->Then(403, R"({"errors":["permission denied"]})");
  http_->Then(200, KvAnswer(R"({"token":"two"})"));
  absl::StatusOr<std::string> v = client->Read("p", "token");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, "two");
  auto r = http_->requests();
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[1].token, "hvs.root-token");
  EXPECT_EQ(r[2].token, "hvs.rotated");
}

TEST_F(VaultKvClientTest, ServerErrorsAndNoAnswerAreUnavailable) {
  auto client = TokenClient();
  http_->Then(503, R"({"errors":["Vault is sealed"]})");
  absl::Status s = client->Read("p", "f").status();
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "Vault is sealed")) << s;
  http_->Then(429, "");
  EXPECT_TRUE(absl::IsUnavailable(client->Read("p", "f").status()));
  http_->ThenFail(absl::UnavailableError("vault: GET ...: Connection refused"));
  EXPECT_TRUE(absl::IsUnavailable(client->Read("p", "f").status()));
  http_->Then(400, R"({"errors":["bad"]})");
  EXPECT_TRUE(absl::IsFailedPrecondition(client->Read("p", "f").status()));
}

TEST_F(VaultKvClientTest, RefusesBadPathsAndFieldsBeforeAnyRequest) {
  auto client = TokenClient();
  for (const char* path : {"", "/abs", "trailing/", "a//b", "a/../b", "./a", "a/.", "new\nline"}) {
    absl::Status s = client->Read(path, "f").status();
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << path << ": " << s;
  }
  EXPECT_TRUE(absl::IsInvalidArgument(client->Read("p", "").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(client->Read(std::string(513, 'a'), "f").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(client->Read("p", std::string(257, 'f')).status()));
  EXPECT_TRUE(http_->requests().empty());
}

TEST_F(VaultKvClientTest, ServesFromTheCacheUntilItsTtlEnds) {
  auto client = TokenClient(absl::Seconds(30));
  http_->Then(200, KvAnswer(R"({"token":"one"})"));
  ASSERT_EQ(*client->Read("p", "token"), "one");
  clock_.Advance(absl::Seconds(29));
  ASSERT_EQ(*client->Read("p", "token"), "one");
  EXPECT_EQ(http_->requests().size(), 1u);
  clock_.Advance(absl::Seconds(1));
  http_->Then(200, KvAnswer(R"({"token":"two"})"));
  ASSERT_EQ(*client->Read("p", "token"), "two");
  EXPECT_EQ(http_->requests().size(), 2u);
}

TEST_F(VaultKvClientTest, ErrorsAreNotCached) {
  auto client = TokenClient(absl::Seconds(30));
  http_->Then(404, R"({"errors":[]})");
  EXPECT_TRUE(absl::IsNotFound(client->Read("p", "token").status()));
  http_->Then(200, KvAnswer(R"({"token":"now-there"})"));
  EXPECT_EQ(*client->Read("p", "token"), "now-there");
}

TEST_F(VaultKvClientTest, AppRoleLogsInWithBothIdsAndUsesTheToken) {
  auto client = AppRoleClient();
  http_->Then(200, LoginAnswer("hvs.approle-1", 3600));
  http_->Then(200, KvAnswer(R"({"token":"s3cr3t-value-never-shown"})"));
  absl::StatusOr<std::string> v = client->Read("team/git", "token");
  ASSERT_TRUE(v.ok()) << v.status();
  auto r = http_->requests();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].method, "POST");
  EXPECT_EQ(r[0].path, "/v1/auth/approle/login");
  EXPECT_EQ(r[0].token, "");
  EXPECT_TRUE(absl::StrContains(r[0].body, R"("role_id":"role-id-never-shown")")) << r[0].body;
  EXPECT_TRUE(absl::StrContains(r[0].body, R"("secret_id":"secret-id-never-shown")")) << r[0].body;
  EXPECT_EQ(r[1].token, "hvs.approle-1");
}

TEST_F(VaultKvClientTest, AppRoleLogsInAgainBeforeTheLeaseEnds) {
  auto client = AppRoleClient();
  http_->Then(200, LoginAnswer("hvs.approle-1", 100));
  http_->Then(200, KvAnswer(R"({"f":"1"})"));
  ASSERT_TRUE(client->Read("p", "f").ok());
  clock_.Advance(absl::Seconds(74));  // before 3/4 of the lease: same token
  http_->Then(200, KvAnswer(R"({"f":"2"})"));
  ASSERT_TRUE(client->Read("p", "f").ok());
  clock_.Advance(absl::Seconds(1));  // 3/4 reached: a new login first
  http_->Then(200, LoginAnswer("hvs.approle-2", 100));
  http_->Then(200, KvAnswer(R"({"f":"3"})"));
  ASSERT_TRUE(client->Read("p", "f").ok());
  auto r = http_->requests();
  ASSERT_EQ(r.size(), 5u);
  EXPECT_EQ(r[2].token, "hvs.approle-1");
  EXPECT_EQ(r[3].path, "/v1/auth/approle/login");
  EXPECT_EQ(r[4].token, "hvs.approle-2");
  EXPECT_EQ(client->logins(), 2);
}

TEST_F(VaultKvClientTest, AppRoleKeepsItsTokenWhenVaultIsDownAtReloginButTheLeaseHasNotEnded) {
  auto client = AppRoleClient();
  http_->Then(200, LoginAnswer("hvs.approle-1", 100));
  http_->Then(200, KvAnswer(R"({"f":"1"})"));
  ASSERT_TRUE(client->Read("p", "f").ok());
  clock_.Advance(absl::Seconds(80));
  http_->ThenFail(absl::UnavailableError("connection refused"));
  http_->Then(200, KvAnswer(R"({"f":"2"})"));
  absl::StatusOr<std::string> v = client->Read("p", "f");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(http_->requests()[3].token, "hvs.approle-1");
  clock_.Advance(absl::Seconds(20));  // the lease has ended: no token to fall back to
  http_->ThenFail(absl::UnavailableError("connection refused"));
  EXPECT_TRUE(absl::IsUnavailable(client->Read("p", "f").status()));
}

TEST_F(VaultKvClientTest, AppRoleLogsInAgainAfterA403) {
  auto client = AppRoleClient();
  http_->Then(200, LoginAnswer("hvs.approle-1", 3600));
  http_->Then(403, R"({"errors":["permission denied"]})");  // token revoked
  http_->Then(200, LoginAnswer("hvs.approle-2", 3600));
  http_->Then(200, KvAnswer(R"({"f":"v"})"));
  absl::StatusOr<std::string> v = client->Read("p", "f");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(http_->requests()[3].token, "hvs.approle-2");
}

TEST_F(VaultKvClientTest, AppRoleLoginRefusedIsPermissionDeniedWithoutTheIds) {
  auto client = AppRoleClient();
  http_->Then(400, R"({"errors":["invalid role or secret ID"]})");
  absl::Status s = client->Read("p", "f").status();
  EXPECT_TRUE(absl::IsPermissionDenied(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "auth/approle/login")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "invalid role or secret ID")) << s;
  ExpectNoSecret(s);
}

TEST_F(VaultKvClientTest, UnreadableOrEmptyCredentialFilesAreFailedPreconditionNamingTheFlag) {
  Write("secret-id", "\n");
  auto client = AppRoleClient();
  absl::Status s = client->Read("p", "f").status();
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "--vault-approle-secret-id-file")) << s;
  EXPECT_TRUE(http_->requests().empty());
}

TEST(VaultResponsesTest, LoginWithoutTokenIsInternal) {
  EXPECT_TRUE(absl::IsInternal(ParseLogin(R"({"auth":null})").status()));
  EXPECT_TRUE(absl::IsInternal(ParseLogin("not json").status()));
  absl::StatusOr<VaultLogin> l = ParseLogin(R"({"auth":{"client_token":"t","lease_duration":0}})");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->lease, absl::ZeroDuration());
}

TEST(VaultResponsesTest, ErrorsAreJoinedBoundedAndSanitized) {
  EXPECT_EQ(VaultErrors(R"({"errors":["a","b"]})"), "a; b");
  EXPECT_EQ(VaultErrors("<html>"), "");
  EXPECT_EQ(VaultErrors(absl::StrCat(R"({"errors":[")", std::string(1000, 'x'), R"("]})")).size(), 300u);
}

}  // namespace
}  // namespace ferry::secrets
