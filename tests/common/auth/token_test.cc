// Ferry API tokens without a database: the format, the key and its file,
// the keyed hash, WhoAmI's answer, and the verifier against a fake store
// (its cache and a store that is down).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/auth/token.h"
#include "common/auth/token_admin.h"
#include "common/auth/token_verifier.h"
#include "common/concurrency/mutex.h"
#include "common/crypto/sha256.h"
#include "tests/support/fake_clock.h"
#include "tests/support/test_database.h"

namespace ferry::auth {
namespace {

std::string WriteFile(const std::string& dir, const std::string& name, const std::string& content, mode_t mode = 0600) {
  std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << content;
  ::chmod(path.c_str(), mode);
  return path;
}

std::unique_ptr<const TokenKey> Key(char fill = 'k') { return *TokenKey::FromBytes(std::string(32, fill)); }

TEST(TokenFormatTest, GeneratedTokensHaveTheDocumentedShape) {
  const std::regex shape("^ferry_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$");
  absl::StatusOr<NewToken> a = GenerateToken();
  absl::StatusOr<NewToken> b = GenerateToken();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(std::regex_match(a->token, shape)) << a->token;
  EXPECT_EQ(a->token.size(), kTokenLength);
  EXPECT_EQ(a->token.substr(6, 12), a->id);
  EXPECT_NE(a->token, b->token);
  EXPECT_NE(a->id, b->id);
  // The secret is 32 random bytes.
  std::string secret;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(a->token.substr(19), &secret));
  EXPECT_EQ(secret.size(), 32u);
  absl::StatusOr<std::string> id = ParseTokenId(a->token);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, a->id);
  EXPECT_TRUE(HasTokenPrefix(a->token));
  EXPECT_FALSE(HasTokenPrefix("eyJhbGciOiJSUzI1NiJ9.e30.sig"));
  EXPECT_EQ(TokenDisplay(a->id), "ferry_" + a->id + "_…");
}

TEST(TokenFormatTest, MalformedTokensAreRefusedWithoutQuotingThem) {
  const std::string good = GenerateToken()->token;
  std::string upper_id = good;
  upper_id[6] = 'A';
  std::string no_separator = good;
  no_separator[18] = '-';
  std::string plus = good;
  plus[30] = '+';
  std::string padded = good.substr(0, kTokenLength - 1) + "=";
  // A last character with its two low bits set encodes no 32-byte secret.
  std::string non_canonical = good.substr(0, kTokenLength - 1) + "B";
  const std::vector<std::string> bad = {"",
                                        "ferry_",
                                        "Ferry" + good.substr(5),
                                        good + "A",
                                        good.substr(0, kTokenLength - 1),
                                        upper_id,
                                        no_separator,
                                        plus,
                                        padded,
                                        non_canonical,
                                        "eyJhbGciOiJSUzI1NiJ9.e30.sig",
                                        std::string("ferry_0123456789ab_") + std::string(42, 'A') + '\0'};
  for (const std::string& t : bad) {
    absl::StatusOr<std::string> id = ParseTokenId(t);
    ASSERT_FALSE(id.ok()) << t;
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(id.status().message().find("malformed API token"), std::string::npos) << id.status();
    if (t.size() > 8) {
      EXPECT_EQ(id.status().message().find(t.substr(8)), std::string::npos) << id.status();
    }
  }
}

TEST(TokenKeyTest, HashIsHmacSha256OfTheWholeToken) {
  // RFC 4231, test case 6: a 131-byte key.
  auto key = TokenKey::FromBytes(std::string(131, '\xaa'));
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(HexEncode((*key)->Hash("Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(TokenKeyTest, KeyedHashChangesWithTheKeyAndMatchesOnlyItsToken) {
  const std::string token = GenerateToken()->token;
  auto k1 = Key('1');
  auto k2 = Key('2');
  const std::string h1 = k1->Hash(token);
  EXPECT_EQ(h1.size(), 32u);
  EXPECT_EQ(k1->Hash(token), h1);
  EXPECT_NE(k2->Hash(token), h1);
  EXPECT_TRUE(k1->Matches(token, h1));
  EXPECT_FALSE(k2->Matches(token, h1));
  EXPECT_FALSE(k1->Matches(GenerateToken()->token, h1));
  EXPECT_FALSE(k1->Matches(token, h1.substr(0, 31)));
  EXPECT_FALSE(k1->Matches(token, ""));
}

TEST(TokenKeyTest, KeyFileHoldsHexOrRawBytesAndErrorsNameTheFlag) {
  const std::string dir = ferry::testing::MakeTempDir("token-key");
  const std::string hex(64, 'a');
  auto from_hex = TokenKey::FromFile(WriteFile(dir, "hex", "  " + hex + "\n"));
  ASSERT_TRUE(from_hex.ok()) << from_hex.status();
  auto decoded = TokenKey::FromBytes(absl::HexStringToBytes(hex));
  EXPECT_EQ((*from_hex)->Hash("x"), (*decoded)->Hash("x"));

  const std::string raw(40, '\x07');
  auto from_raw = TokenKey::FromFile(WriteFile(dir, "raw", raw));
  ASSERT_TRUE(from_raw.ok()) << from_raw.status();
  EXPECT_EQ((*from_raw)->Hash("x"), (*TokenKey::FromBytes(raw))->Hash("x"));

  const std::string short_path = WriteFile(dir, "short", "0123abcd\n");
  auto too_short = TokenKey::FromFile(short_path);
  ASSERT_FALSE(too_short.ok());
  EXPECT_EQ(too_short.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(too_short.status().message().find("--token-key-file " + short_path), std::string::npos);
  EXPECT_NE(too_short.status().message().find("at least 32"), std::string::npos);
  EXPECT_EQ(too_short.status().message().find("0123abcd"), std::string::npos) << too_short.status();

  auto missing = TokenKey::FromFile(dir + "/none");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("--token-key-file"), std::string::npos);

  auto unset = TokenKey::FromFile("");
  ASSERT_FALSE(unset.ok());
  EXPECT_NE(unset.status().message().find("--token-key-file"), std::string::npos);

  // Readable by everyone: loaded (with a warning in the log).
  EXPECT_TRUE(TokenKey::FromFile(WriteFile(dir, "open", hex, 0644)).ok());
}

TEST(TokenKeyTest, ReadTokenFileTakesOneTokenAndNeverQuotesIt) {
  const std::string dir = ferry::testing::MakeTempDir("token-file");
  const std::string token = GenerateToken()->token;
  auto good = ReadTokenFile(WriteFile(dir, "good", token + "\n"), "--bootstrap-admin-token-file");
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(*good, token);
  auto empty = ReadTokenFile(WriteFile(dir, "empty", "\n"), "--bootstrap-admin-token-file");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "");
  const std::string bad_path = WriteFile(dir, "bad", token.substr(0, 40) + "\n");
  auto bad = ReadTokenFile(bad_path, "--bootstrap-admin-token-file");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("--bootstrap-admin-token-file " + bad_path), std::string::npos);
  EXPECT_EQ(bad.status().message().find(token.substr(19, 20)), std::string::npos) << bad.status();
  auto missing = ReadTokenFile(dir + "/none", "--bootstrap-admin-token-file");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

TEST(WhoAmITest, AnswersThePrincipalAsAuthenticationDecidedIt) {
  Principal p;
  p.kind = PrincipalKind::kUser;
  p.id = "ci-bot";
  p.groups = {"release", "platform"};
  p.method = "token:0123456789ab";
  v1::WhoAmIResponse r = WhoAmIOf(p);
  EXPECT_EQ(r.subject(), "user:ci-bot");
  EXPECT_EQ(r.kind(), v1::PRINCIPAL_KIND_USER);
  EXPECT_EQ(r.id(), "ci-bot");
  ASSERT_EQ(r.groups_size(), 2);
  EXPECT_EQ(r.groups(1), "platform");
  EXPECT_EQ(r.method(), "token:0123456789ab");
  EXPECT_EQ(r.acting_for(), "");

  Principal svc = ServicePrincipal("deployer");
  svc.acting_for = "alice";
  r = WhoAmIOf(svc);
  EXPECT_EQ(r.subject(), "service:deployer");
  EXPECT_EQ(r.kind(), v1::PRINCIPAL_KIND_SERVICE);
  EXPECT_EQ(r.method(), "mtls");
  EXPECT_EQ(r.acting_for(), "alice");

  r = WhoAmIOf(Principal{});
  EXPECT_EQ(r.subject(), "anonymous");
  EXPECT_EQ(r.kind(), v1::PRINCIPAL_KIND_ANONYMOUS);
}

// A token store in memory that counts lookups and can be down.
class FakeTokenStore final : public TokenStore {
 public:
  absl::Status Create(const StoredToken& token, const v1::Event&) override {
    MutexLock lock(&mu_);
    if (!tokens_.emplace(token.record.id, token).second) return absl::AlreadyExistsError("exists");
    return absl::OkStatus();
  }
  absl::StatusOr<StoredToken> Lookup(const std::string& id) override {
    MutexLock lock(&mu_);
    ++lookups_;
    if (down_) return absl::UnavailableError("connection refused");
    auto it = tokens_.find(id);
    if (it == tokens_.end()) return absl::NotFoundError("not found");
    return it->second;
  }
  absl::StatusOr<TokenPage> List(const TokenFilter&) override { return absl::UnimplementedError("unused"); }
  absl::StatusOr<TokenRecord> Revoke(const std::string& id, absl::Time when,
                                     const std::function<v1::Event(const TokenRecord&)>&) override {
    MutexLock lock(&mu_);
    auto it = tokens_.find(id);
    if (it == tokens_.end()) return absl::NotFoundError("not found");
    it->second.record.revoke_time = when;
    return it->second.record;
  }
  absl::Status TouchLastUsed(const std::string& id, absl::Time when) override {
    MutexLock lock(&mu_);
    ++touches_;
    if (down_) return absl::UnavailableError("connection refused");
    tokens_[id].record.last_used_time = when;
    return absl::OkStatus();
  }
  void SetDown(bool down) {
    MutexLock lock(&mu_);
    down_ = down;
  }
  int lookups() {
    MutexLock lock(&mu_);
    return lookups_;
  }
  int touches() {
    MutexLock lock(&mu_);
    return touches_;
  }

 private:
  Mutex mu_;
  std::map<std::string, StoredToken> tokens_ ABSL_GUARDED_BY(mu_);
  bool down_ ABSL_GUARDED_BY(mu_) = false;
  int lookups_ ABSL_GUARDED_BY(mu_) = 0;
  int touches_ ABSL_GUARDED_BY(mu_) = 0;
};

TEST(TokenVerifierTest, ABusyCallerCostsOneLookupPerCacheTtlAndOneWritePerMinute) {
  FakeTokenStore store;
  ferry::testing::FakeClock clock;
  auto key = Key();
  TokenAdmin admin(&store, key.get(), &clock);
  TokenVerifier verifier(&store, key.get(), &clock);
  v1::CreateTokenRequest req;
  req.set_subject("ci-bot");
  absl::StatusOr<v1::CreateTokenResponse> made = admin.CreateToken(v1::Actor(), req);
  ASSERT_TRUE(made.ok()) << made.status();
  for (int i = 0; i < 100; ++i) {
    absl::StatusOr<Principal> p = verifier.Verify(made->secret());
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(p->id, "ci-bot");
  }
  EXPECT_EQ(store.lookups(), 1);
  EXPECT_EQ(store.touches(), 1);
  clock.Advance(absl::Seconds(2));
  ASSERT_TRUE(verifier.Verify(made->secret()).ok());
  EXPECT_EQ(store.lookups(), 2);
  EXPECT_EQ(store.touches(), 1);
  clock.Advance(absl::Minutes(1));
  ASSERT_TRUE(verifier.Verify(made->secret()).ok());
  EXPECT_EQ(store.touches(), 2);
  // A wrong secret for the same id never hits the cache.
  std::string wrong = made->secret();
  wrong[20] = wrong[20] == 'A' ? 'B' : 'A';
  absl::StatusOr<Principal> refused = verifier.Verify(wrong);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(store.lookups(), 4);
}

TEST(TokenVerifierTest, StoreDownIsUnavailableAndMalformedNeverReachesIt) {
  FakeTokenStore store;
  ferry::testing::FakeClock clock;
  auto key = Key();
  TokenVerifier verifier(&store, key.get(), &clock);
  store.SetDown(true);
  const std::string token = GenerateToken()->token;
  absl::StatusOr<Principal> p = verifier.Verify(token);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kUnavailable) << p.status();
  EXPECT_EQ(p.status().message().find(token.substr(19)), std::string::npos) << p.status();
  const int before = store.lookups();
  p = verifier.Verify("ferry_nope");
  EXPECT_EQ(p.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(store.lookups(), before);
  EXPECT_TRUE(verifier.Recognizes("ferry_nope"));
  EXPECT_FALSE(verifier.Recognizes("eyJhbGciOiJSUzI1NiJ9.e30.sig"));
}

}  // namespace
}  // namespace ferry::auth
