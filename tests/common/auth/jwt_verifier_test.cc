#include "common/auth/jwt_verifier.h"

#include <cjose/cjose.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/concurrency/mutex.h"
#include "common/json/json.h"
#include "tests/support/fake_clock.h"
#include "tests/support/test_database.h"

namespace ferry::auth {
namespace {

using nlohmann::json;
using ferry::testing::FakeClock;

constexpr char kIssuer[] = "https://idp.example.com";
constexpr char kAudience[] = "ferry";

std::string Base64Url(const std::string& bytes) {
  char* out = nullptr;
  size_t out_len = 0;
  cjose_err err{};
  EXPECT_TRUE(
      cjose_base64url_encode(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &out, &out_len, &err));
  std::string text(out, out_len);
  cjose_get_dealloc()(out);
  return text;
}

std::string Dump(const json& value) { return DumpJson(value).value(); }

// A key pair made by cjose, and tokens signed with it.
class TestKey {
 public:
  static std::unique_ptr<TestKey> Rsa(const std::string& kid, size_t bits = 2048) {
    static const uint8_t kExponent[] = {0x01, 0x00, 0x01};
    cjose_err err{};
    return std::make_unique<TestKey>(cjose_jwk_create_RSA_random(bits, kExponent, sizeof(kExponent), &err), kid);
  }
  static std::unique_ptr<TestKey> Ec(const std::string& kid, cjose_jwk_ec_curve curve = CJOSE_JWK_EC_P_256) {
    cjose_err err{};
    return std::make_unique<TestKey>(cjose_jwk_create_EC_random(curve, &err), kid);
  }
  // An HMAC key whose secret is `secret` (the attack of the HS* tests).
  static std::unique_ptr<TestKey> Oct(const std::string& kid, const std::string& secret) {
    cjose_err err{};
    return std::make_unique<TestKey>(
        cjose_jwk_create_oct_spec(reinterpret_cast<const uint8_t*>(secret.data()), secret.size(), &err), kid);
  }

  TestKey(cjose_jwk_t* jwk, std::string kid) : jwk_(jwk), kid_(std::move(kid)) {
    EXPECT_NE(jwk_, nullptr);
    cjose_err err{};
    if (!kid_.empty()) {
      EXPECT_TRUE(cjose_jwk_set_kid(jwk_, kid_.data(), kid_.size(), &err));
    }
  }
  ~TestKey() { cjose_jwk_release(jwk_); }
  TestKey(const TestKey&) = delete;
  TestKey& operator=(const TestKey&) = delete;

  const std::string& kid() const { return kid_; }

  // The public JWK, as a JWKS publishes it.
  json PublicJwk() const {
    cjose_err err{};
    char* text = cjose_jwk_to_json(jwk_, false, &err);
    EXPECT_NE(text, nullptr);
    json value = ParseJson(text).value();
    cjose_get_dealloc()(text);
    return value;
  }

  // A compact JWS of `claims`, signed by cjose with `alg`.
  std::string Sign(const std::string& alg, const json& claims, bool with_kid = true) const {
    cjose_err err{};
    cjose_header_t* header = cjose_header_new(&err);
    EXPECT_TRUE(cjose_header_set(header, CJOSE_HDR_ALG, alg.c_str(), &err));
    if (with_kid && !kid_.empty()) {
      EXPECT_TRUE(cjose_header_set(header, CJOSE_HDR_KID, kid_.c_str(), &err));
    }
    EXPECT_TRUE(cjose_header_set(header, "typ", "JWT", &err));
    const std::string payload = Dump(claims);
    cjose_jws_t* jws =
        cjose_jws_sign(jwk_, header, reinterpret_cast<const uint8_t*>(payload.data()), payload.size(), &err);
    cjose_header_release(header);
    EXPECT_NE(jws, nullptr) << (err.message ? err.message : "");
    if (jws == nullptr) return "";
    const char* compact = nullptr;
    EXPECT_TRUE(cjose_jws_export(jws, &compact, &err));
    std::string token = compact ? compact : "";
    cjose_jws_release(jws);
    return token;
  }

 private:
  cjose_jwk_t* jwk_;
  std::string kid_;
};

// Keys are slow to make: one of each for the whole test binary.
const TestKey& RsaKey() {
  static const TestKey* key = TestKey::Rsa("rsa-1").release();
  return *key;
}
const TestKey& OtherRsaKey() {  // same kid, another key: a forger's
  static const TestKey* key = TestKey::Rsa("rsa-1").release();
  return *key;
}
const TestKey& RotatedRsaKey() {
  static const TestKey* key = TestKey::Rsa("rsa-2").release();
  return *key;
}
const TestKey& EcKey() {
  static const TestKey* key = TestKey::Ec("ec-1").release();
  return *key;
}

json Jwks(const std::vector<const TestKey*>& keys) {
  json list = json::array();
  for (const TestKey* key : keys) list.push_back(key->PublicJwk());
  return json{{"keys", list}};
}

// A token's text without its signature is no secret, but the whole token
// must never come back in a refusal.
void ExpectRefused(const absl::StatusOr<Principal>& result, const std::string& token, const std::string& why) {
  ASSERT_FALSE(result.ok()) << "accepted: " << result->id;
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated) << result.status();
  EXPECT_TRUE(absl::StrContains(result.status().message(), why)) << result.status();
  if (token.size() > 20) {
    EXPECT_FALSE(absl::StrContains(result.status().message(), token.substr(token.size() - 20))) << result.status();
  }
}

// Serves a JWKS on a loopback port, counting the fetches.
class JwksServer {
 public:
  JwksServer() {
    server_.Get("/jwks.json", [this](const httplib::Request&, httplib::Response& res) {
      MutexLock lock(&mu_);
      ++fetches_;
      res.set_content(body_, "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");  // listening from here on
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() before the loop runs would be lost, and the join would hang.
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~JwksServer() { Stop(); }

  void Publish(const json& jwks) {
    MutexLock lock(&mu_);
    body_ = Dump(jwks);
  }
  int fetches() {
    MutexLock lock(&mu_);
    return fetches_;
  }
  void Stop() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_, "/jwks.json"); }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  Mutex mu_;
  std::string body_ ABSL_GUARDED_BY(mu_) = "{}";
  int fetches_ ABSL_GUARDED_BY(mu_) = 0;
};

class JwtVerifierTest : public ::testing::Test {
 protected:
  JwtVerifierTest() : dir_(ferry::testing::MakeTempDir("jwt-verifier")) {}

  OidcIssuer FileIssuer() const {
    OidcIssuer issuer;
    issuer.issuer = kIssuer;
    issuer.audience = kAudience;
    issuer.jwks_file = dir_ + "/jwks.json";
    issuer.username_claim = "email";
    return issuer;
  }
  OidcIssuer UrlIssuer(const std::string& url) const {
    OidcIssuer issuer = FileIssuer();
    issuer.jwks_file.clear();
    issuer.jwks_url = url;
    return issuer;
  }

  // Replaces the file at once (a new inode, as an editor or a ConfigMap does).
  void WriteJwksFile(const json& jwks) {
    const std::string path = dir_ + "/jwks.json";
    {
      std::ofstream out(path + ".tmp", std::ios::trunc);
      out << Dump(jwks);
    }
    ASSERT_EQ(std::rename((path + ".tmp").c_str(), path.c_str()), 0);
  }

  std::unique_ptr<JwtVerifier> Verifier(const OidcIssuer& issuer) {
    issuers_ = {issuer};
    return std::make_unique<JwtVerifier>([this] { return issuers_; }, &clock_);
  }

  json Claims() const {
    const int64_t now = absl::ToUnixSeconds(clock_.Now());
    return json{{"iss", kIssuer},
                {"aud", kAudience},
                {"sub", "0f3a"},
                {"email", "alice@example.com"},
                {"groups", json::array({"platform", "sre"})},
                {"iat", now},
                {"exp", now + 300}};
  }

  FakeClock clock_;
  std::string dir_;
  std::vector<OidcIssuer> issuers_;
};

TEST_F(JwtVerifierTest, AcceptsRs256TokenWithKeysFromAFile) {
  WriteJwksFile(Jwks({&RsaKey(), &EcKey()}));
  auto verifier = Verifier(FileIssuer());
  const std::string token = RsaKey().Sign("RS256", Claims());
  ASSERT_TRUE(verifier->Recognizes(token));
  auto principal = verifier->Verify(token);
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ(principal->kind, PrincipalKind::kUser);
  EXPECT_EQ(principal->id, "alice@example.com");
  EXPECT_EQ(principal->groups, (std::vector<std::string>{"platform", "sre"}));
  EXPECT_EQ(principal->method, "oidc:https://idp.example.com");
}

TEST_F(JwtVerifierTest, AcceptsEs256TokenWithKeysFromAUrl) {
  JwksServer server;
  server.Publish(Jwks({&EcKey()}));
  auto verifier = Verifier(UrlIssuer(server.url()));
  auto principal = verifier->Verify(EcKey().Sign("ES256", Claims()));
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ(principal->id, "alice@example.com");
  EXPECT_EQ(server.fetches(), 1);
  // Cached: the next token needs no fetch.
  ASSERT_TRUE(verifier->Verify(EcKey().Sign("ES256", Claims())).ok());
  EXPECT_EQ(server.fetches(), 1);
}

TEST_F(JwtVerifierTest, AcceptsEveryAsymmetricAlgorithmWithTheRightKey) {
  const auto p384 = TestKey::Ec("ec-384", CJOSE_JWK_EC_P_384);
  const auto p521 = TestKey::Ec("ec-521", CJOSE_JWK_EC_P_521);
  WriteJwksFile(Jwks({&RsaKey(), p384.get(), p521.get()}));
  auto verifier = Verifier(FileIssuer());
  for (const char* alg : {"RS384", "RS512", "PS256", "PS384", "PS512"}) {
    auto principal = verifier->Verify(RsaKey().Sign(alg, Claims()));
    EXPECT_TRUE(principal.ok()) << alg << ": " << principal.status();
  }
  auto es384 = verifier->Verify(p384->Sign("ES384", Claims()));
  EXPECT_TRUE(es384.ok()) << es384.status();
  auto es512 = verifier->Verify(p521->Sign("ES512", Claims()));
  EXPECT_TRUE(es512.ok()) << es512.status();
}

TEST_F(JwtVerifierTest, TokenWithoutKidUsesTheOnlyKey) {
  WriteJwksFile(Jwks({&RsaKey()}));
  auto verifier = Verifier(FileIssuer());
  auto principal = verifier->Verify(RsaKey().Sign("RS256", Claims(), /*with_kid=*/false));
  ASSERT_TRUE(principal.ok()) << principal.status();

  WriteJwksFile(Jwks({&RsaKey(), &EcKey()}));
  const std::string token = RsaKey().Sign("RS256", Claims(), /*with_kid=*/false);
  ExpectRefused(verifier->Verify(token), token, "has no kid and the JWKS");
}

TEST_F(JwtVerifierTest, RefusesUntrustedIssuer) {
  WriteJwksFile(Jwks({&RsaKey()}));
  auto verifier = Verifier(FileIssuer());
  json claims = Claims();
  claims["iss"] = "https://evil.example.com";
  const std::string token = RsaKey().Sign("RS256", claims);
  ExpectRefused(verifier->Verify(token), token, "JWT issuer \"https://evil.example.com\" is not trusted");

  claims.erase("iss");
  const std::string no_issuer = RsaKey().Sign("RS256", claims);
  ExpectRefused(verifier->Verify(no_issuer), no_issuer, "no iss claim");
}

TEST_F(JwtVerifierTest, ChecksTheAudience) {
  WriteJwksFile(Jwks({&RsaKey()}));
  auto verifier = Verifier(FileIssuer());
  json claims = Claims();
  claims["aud"] = "grafana";
  std::string token = RsaKey().Sign("RS256", claims);
  ExpectRefused(verifier->Verify(token), token, "audience does not match");

  claims["aud"] = json::array({"grafana", "ferry"});
  EXPECT_TRUE(verifier->Verify(RsaKey().Sign("RS256", claims)).ok());
  claims["aud"] = json::array({"grafana"});
  token = RsaKey().Sign("RS256", claims);
  ExpectRefused(verifier->Verify(token), token, "audience does not match");
  claims.erase("aud");
  token = RsaKey().Sign("RS256", claims);
  ExpectRefused(verifier->Verify(token), token, "no aud claim");
}

TEST_F(JwtVerifierTest, RefusesExpiredAndNotYetValidTokens) {
  WriteJwksFile(Jwks({&RsaKey()}));
  auto verifier = Verifier(FileIssuer());
  const std::string token = RsaKey().Sign("RS256", Claims());  // valid for 300 s
  ASSERT_TRUE(verifier->Verify(token).ok());
  clock_.Advance(absl::Seconds(300 + 61));  // past exp and the 60 s skew
  ExpectRefused(verifier->Verify(token), token, "JWT expired");

  json claims = Claims();
  claims["nbf"] = absl::ToUnixSeconds(clock_.Now()) + 120;
  std::string later = RsaKey().Sign("RS256", claims);
  ExpectRefused(verifier->Verify(later), later, "not valid yet");

  claims = Claims();
  claims["iat"] = absl::ToUnixSeconds(clock_.Now()) + 120;
  later = RsaKey().Sign("RS256", claims);
  ExpectRefused(verifier->Verify(later), later, "issued in the future");

  claims = Claims();
  claims.erase("exp");
  const std::string forever = RsaKey().Sign("RS256", claims);
  ExpectRefused(verifier->Verify(forever), forever, "no exp claim");
}

TEST_F(JwtVerifierTest, ToleratesTheIssuersClockSkew) {
  WriteJwksFile(Jwks({&RsaKey()}));
  auto verifier = Verifier(FileIssuer());  // clock_skew 60 s
  const int64_t now = absl::ToUnixSeconds(clock_.Now());
  json claims = Claims();
  claims["exp"] = now - 30;
  claims["nbf"] = now + 30;
  claims["iat"] = now + 30;
  const std::string token = RsaKey().Sign("RS256", claims);
  auto principal = verifier->Verify(token);
  EXPECT_TRUE(principal.ok()) << principal.status();

  OidcIssuer strict = FileIssuer();
  strict.clock_skew = absl::Seconds(10);
  auto strict_verifier = Verifier(strict);
  ExpectRefused(strict_verifier->Verify(token), token, "JWT expired");
}

TEST_F(JwtVerifierTest, RefusesTokenSignedByAnotherKey) {
  WriteJwksFile(Jwks({&RsaKey()}));
  auto verifier = Verifier(FileIssuer());
  const std::string forged = OtherRsaKey().Sign("RS256", Claims());  // same kid, the forger's key
  ExpectRefused(verifier->Verify(forged), forged, "signature does not verify");

  // A genuine token with a payload swapped in.
  const std::string genuine = RsaKey().Sign("RS256", Claims());
  json claims = Claims();
  claims["email"] = "mallory@example.com";
  const size_t first = genuine.find('.');
  const size_t second = genuine.find('.', first + 1);
  const std::string spliced = genuine.substr(0, first + 1) + Base64Url(Dump(claims)) + genuine.substr(second);
  ExpectRefused(verifier->Verify(spliced), spliced, "signature does not verify");
}

TEST_F(JwtVerifierTest, RefusesAlgNone) {
  WriteJwksFile(Jwks({&RsaKey()}));
  auto verifier = Verifier(FileIssuer());
  const std::string unsigned_token =
      Base64Url(R"({"alg":"none","kid":"rsa-1","typ":"JWT"})") + "." + Base64Url(Dump(Claims())) + ".";
  EXPECT_TRUE(verifier->Recognizes(unsigned_token));
  ExpectRefused(verifier->Verify(unsigned_token), unsigned_token, "algorithm none is refused");
  // With a signature of a genuine token pasted on.
  const std::string genuine = RsaKey().Sign("RS256", Claims());
  const std::string pasted = unsigned_token + genuine.substr(genuine.rfind('.') + 1);
  ExpectRefused(verifier->Verify(pasted), pasted, "algorithm none is refused");
}

TEST_F(JwtVerifierTest, RefusesHs256SignedWithThePublicKeyAsSecret) {
  WriteJwksFile(Jwks({&RsaKey()}));
  auto verifier = Verifier(FileIssuer());
  // The attacker knows the published key and uses its bytes as an HMAC key.
  const std::string published = Dump(RsaKey().PublicJwk());
  for (const char* alg : {"HS256", "HS384", "HS512"}) {
    const auto hmac = TestKey::Oct("rsa-1", published);
    const std::string token = hmac->Sign(alg, Claims());
    ASSERT_FALSE(token.empty());
    ExpectRefused(verifier->Verify(token), token, "only public-key signatures");
  }
}

TEST_F(JwtVerifierTest, RefusesHeadersThatParsersCouldReadTwoWays) {
  WriteJwksFile(Jwks({&RsaKey()}));
  auto verifier = Verifier(FileIssuer());
  const std::string genuine = RsaKey().Sign("RS256", Claims());
  const std::string rest = genuine.substr(genuine.find('.'));
  // Two algs: whichever one a parser keeps, no HS* or none gets through.
  for (const char* header : {R"({"alg":"RS256","kid":"rsa-1","alg":"HS256"})",
                             R"({"alg":"HS256","kid":"rsa-1","alg":"RS256"})",
                             R"({"alg":"none","kid":"rsa-1","alg":"RS256"})"}) {
    const std::string token = Base64Url(header) + rest;
    auto result = verifier->Verify(token);
    ASSERT_FALSE(result.ok()) << header;
    EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated) << result.status();
  }
}

TEST_F(JwtVerifierTest, RefusesKeysThatDoNotFitTheAlgorithm) {
  const auto small = TestKey::Rsa("rsa-small", 1024);
  WriteJwksFile(Jwks({&RsaKey(), &EcKey(), small.get()}));
  auto verifier = Verifier(FileIssuer());
  const std::string payload = Base64Url(Dump(Claims()));
  const std::string rs_on_ec = Base64Url(R"({"alg":"RS256","kid":"ec-1"})") + "." + payload + ".c2ln";
  ExpectRefused(verifier->Verify(rs_on_ec), rs_on_ec, "cannot use key \"ec-1\" (kty EC)");
  const std::string es384_on_p256 = Base64Url(R"({"alg":"ES384","kid":"ec-1"})") + "." + payload + ".c2ln";
  ExpectRefused(verifier->Verify(es384_on_p256), es384_on_p256, "(another curve)");
  const std::string weak = small->Sign("RS256", Claims());
  ExpectRefused(verifier->Verify(weak), weak, "RSA key of 1024 bits");
  const std::string other_alg = Base64Url(R"({"alg":"RS256","kid":"rsa-1","crit":["exp"]})") + "." + payload + ".c2ln";
  ExpectRefused(verifier->Verify(other_alg), other_alg, "crit");
}

TEST_F(JwtVerifierTest, ReadsUserNameAndGroupsFromTheConfiguredClaims) {
  WriteJwksFile(Jwks({&RsaKey()}));
  OidcIssuer issuer = FileIssuer();
  issuer.username_claim = "preferred_username";
  issuer.groups_claim = "roles";
  auto verifier = Verifier(issuer);
  json claims = Claims();
  claims["preferred_username"] = "alice";
  claims["roles"] = "approvers";  // one group as a string
  auto principal = verifier->Verify(RsaKey().Sign("RS256", claims));
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ(principal->id, "alice");
  EXPECT_EQ(principal->groups, std::vector<std::string>{"approvers"});

  claims.erase("roles");  // groups are optional
  principal = verifier->Verify(RsaKey().Sign("RS256", claims));
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_TRUE(principal->groups.empty());

  claims["roles"] = json::array({"a", 7});
  std::string token = RsaKey().Sign("RS256", claims);
  ExpectRefused(verifier->Verify(token), token, "groups claim \"roles\" is not a string or an array of strings");

  claims.erase("roles");
  claims.erase("preferred_username");
  token = RsaKey().Sign("RS256", claims);
  ExpectRefused(verifier->Verify(token), token, "no user name: claim \"preferred_username\"");
  claims["preferred_username"] = "alice\nadmin";
  token = RsaKey().Sign("RS256", claims);
  ExpectRefused(verifier->Verify(token), token, "control characters");
}

TEST_F(JwtVerifierTest, RereadsTheJwksFileWhenItChanges) {
  WriteJwksFile(Jwks({&RsaKey()}));
  auto verifier = Verifier(FileIssuer());
  ASSERT_TRUE(verifier->Verify(RsaKey().Sign("RS256", Claims())).ok());
  const std::string rotated = RotatedRsaKey().Sign("RS256", Claims());
  ExpectRefused(verifier->Verify(rotated), rotated, "key id \"rsa-2\" is not in the JWKS");

  WriteJwksFile(Jwks({&RotatedRsaKey()}));
  auto principal = verifier->Verify(rotated);
  EXPECT_TRUE(principal.ok()) << principal.status();
  const std::string retired = RsaKey().Sign("RS256", Claims());
  ExpectRefused(verifier->Verify(retired), retired, "key id \"rsa-1\" is not in the JWKS");

  // A broken rewrite keeps the keys read before.
  {
    std::ofstream out(dir_ + "/jwks.json", std::ios::app);
    out << "garbage";
  }
  EXPECT_TRUE(verifier->Verify(rotated).ok());
}

TEST_F(JwtVerifierTest, MissingJwksFileIsUnavailable) {
  auto verifier = Verifier(FileIssuer());
  auto result = verifier->Verify(RsaKey().Sign("RS256", Claims()));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable) << result.status();
  EXPECT_TRUE(absl::StrContains(result.status().message(), "JWKS file")) << result.status();
}

TEST_F(JwtVerifierTest, UnknownKidRefetchesTheUrlAtMostEvery30Seconds) {
  JwksServer server;
  server.Publish(Jwks({&RsaKey()}));
  auto verifier = Verifier(UrlIssuer(server.url()));
  ASSERT_TRUE(verifier->Verify(RsaKey().Sign("RS256", Claims())).ok());
  ASSERT_EQ(server.fetches(), 1);

  // The issuer rotates; a token with the new kid comes at once: the JWKS was
  // fetched less than 30 s ago, so it is not fetched again.
  server.Publish(Jwks({&RsaKey(), &RotatedRsaKey()}));
  std::string rotated = RotatedRsaKey().Sign("RS256", Claims());
  ExpectRefused(verifier->Verify(rotated), rotated, "key id \"rsa-2\" is not in the JWKS");
  EXPECT_EQ(server.fetches(), 1);

  clock_.Advance(absl::Seconds(31));
  rotated = RotatedRsaKey().Sign("RS256", Claims());
  auto principal = verifier->Verify(rotated);
  EXPECT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ(server.fetches(), 2);

  // Unknown kids cannot make it fetch more than once per 30 s.
  for (int i = 0; i < 5; ++i) {
    const auto stranger = TestKey::Ec(absl::StrCat("unknown-", i));
    const std::string token = stranger->Sign("ES256", Claims());
    ExpectRefused(verifier->Verify(token), token, "is not in the JWKS");
  }
  EXPECT_EQ(server.fetches(), 2);
  EXPECT_TRUE(verifier->Verify(RsaKey().Sign("RS256", Claims())).ok());
  EXPECT_EQ(server.fetches(), 2);
}

TEST_F(JwtVerifierTest, KeepsCachedKeysWhenTheJwksUrlIsDown) {
  JwksServer server;
  server.Publish(Jwks({&RsaKey()}));
  auto verifier = Verifier(UrlIssuer(server.url()));
  ASSERT_TRUE(verifier->Verify(RsaKey().Sign("RS256", Claims())).ok());
  server.Stop();

  clock_.Advance(absl::Hours(2));  // the keys are old: a refresh is tried and fails
  auto principal = verifier->Verify(RsaKey().Sign("RS256", Claims()));
  EXPECT_TRUE(principal.ok()) << principal.status();
  principal = verifier->Verify(RsaKey().Sign("RS256", Claims()));
  EXPECT_TRUE(principal.ok()) << principal.status();

  clock_.Advance(absl::Seconds(31));  // an unknown kid: the refetch fails, the token is refused
  const std::string rotated = RotatedRsaKey().Sign("RS256", Claims());
  ExpectRefused(verifier->Verify(rotated), rotated, "is not in the JWKS");
  EXPECT_TRUE(verifier->Verify(RsaKey().Sign("RS256", Claims())).ok());
  EXPECT_EQ(server.fetches(), 1);
}

TEST_F(JwtVerifierTest, JwksUrlDownWithoutCachedKeysIsUnavailable) {
  std::string url;
  {
    JwksServer gone;  // a loopback port where nothing listens any more
    url = gone.url();
  }
  auto verifier = Verifier(UrlIssuer(url));
  auto result = verifier->Verify(RsaKey().Sign("RS256", Claims()));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable) << result.status();
  EXPECT_TRUE(absl::StrContains(result.status().message(), "JWKS of issuer \"https://idp.example.com\""))
      << result.status();
}

TEST_F(JwtVerifierTest, RefusesJwksLargerThanOneMebibyte) {
  JwksServer server;
  json jwks = Jwks({&RsaKey()});
  jwks["padding"] = std::string(1024 * 1024, 'x');
  server.Publish(jwks);
  auto verifier = Verifier(UrlIssuer(server.url()));
  auto result = verifier->Verify(RsaKey().Sign("RS256", Claims()));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable) << result.status();
  EXPECT_TRUE(absl::StrContains(result.status().message(), "larger than 1048576 bytes")) << result.status();
}

TEST_F(JwtVerifierTest, RefusesPlainHttpJwksUrlsOffLoopback) {
  auto verifier = Verifier(UrlIssuer("http://192.0.2.1/jwks.json"));
  auto result = verifier->Verify(RsaKey().Sign("RS256", Claims()));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable) << result.status();
  EXPECT_TRUE(absl::StrContains(result.status().message(), "must be https")) << result.status();
}

TEST_F(JwtVerifierTest, RefusesMalformedTokens) {
  WriteJwksFile(Jwks({&RsaKey()}));
  auto verifier = Verifier(FileIssuer());
  const std::string payload = Base64Url(Dump(Claims()));
  const std::string header = Base64Url(R"({"alg":"RS256","kid":"rsa-1"})");

  const std::string bad_chars = header + ".ab$cd." + "c2ln";
  EXPECT_FALSE(verifier->Recognizes(bad_chars));
  ExpectRefused(verifier->Verify(bad_chars), bad_chars, "not base64url");

  const std::string bad_length = header + "." + payload + "x.c2ln";  // 4n+1 characters
  ExpectRefused(verifier->Verify(bad_length), bad_length, "malformed");

  const std::string not_json = Base64Url("hello") + "." + payload + ".c2ln";
  ExpectRefused(verifier->Verify(not_json), not_json, "its header is not a JSON object");
  const std::string array_payload = header + "." + Base64Url("[1,2]") + ".c2ln";
  ExpectRefused(verifier->Verify(array_payload), array_payload, "its payload is not a JSON object");

  const std::string two_parts = header + "." + payload;
  EXPECT_FALSE(verifier->Recognizes(two_parts));
  ExpectRefused(verifier->Verify(two_parts), two_parts, "not three dot-separated parts");

  json huge_claims = Claims();
  huge_claims["padding"] = std::string(17 * 1024, 'x');
  const std::string huge = RsaKey().Sign("RS256", huge_claims);
  ExpectRefused(verifier->Verify(huge), huge, "larger than 16 KiB");
}

TEST_F(JwtVerifierTest, RecognizesJwtsButNotFerryTokens) {
  auto verifier = Verifier(FileIssuer());
  EXPECT_TRUE(verifier->Recognizes(RsaKey().Sign("RS256", Claims())));
  EXPECT_FALSE(verifier->Recognizes("ferry_0123456789ab_" + std::string(43, 'A')));
  EXPECT_FALSE(verifier->Recognizes("ferry_a.b.c"));
  EXPECT_FALSE(verifier->Recognizes(""));
  EXPECT_FALSE(verifier->Recognizes("a.b.c.d"));
  EXPECT_FALSE(verifier->Recognizes(".b.c"));
  EXPECT_FALSE(verifier->Recognizes("a..c"));
  EXPECT_TRUE(verifier->Recognizes("a.b.c"));
}

TEST_F(JwtVerifierTest, VerifiesFromManyThreads) {
  JwksServer server;
  server.Publish(Jwks({&RsaKey(), &EcKey()}));
  auto verifier = Verifier(UrlIssuer(server.url()));
  const std::string rs = RsaKey().Sign("RS256", Claims());
  const std::string es = EcKey().Sign("ES256", Claims());
  std::vector<std::thread> threads;
  Mutex mu;
  int accepted = 0;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        if (verifier->Verify((t + i) % 2 == 0 ? rs : es).ok()) {
          MutexLock lock(&mu);
          ++accepted;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  MutexLock lock(&mu);
  EXPECT_EQ(accepted, 100);
  EXPECT_EQ(server.fetches(), 1);
}

}  // namespace
}  // namespace ferry::auth
