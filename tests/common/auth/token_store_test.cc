// API tokens against a real PostgreSQL: TokenAdmin (create, list, revoke,
// the bootstrap token), TokenVerifier and PostgresTokenStore together, with
// the audit events they write through the outbox.
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "access_migrations.h"
#include "common/auth/api_tokens.h"
#include "common/auth/postgres_token_store.h"
#include "common/auth/token.h"
#include "common/auth/token_admin.h"
#include "common/auth/token_verifier.h"
#include "common/crypto/sha256.h"
#include "common/outbox/postgres_outbox_store.h"
#include "common/postgres/migrator.h"
#include "svc_migrations.h"
#include "tests/support/fake_clock.h"
#include "tests/support/test_database.h"

namespace ferry::auth {
namespace {

v1::Actor Alice() {
  v1::Actor a;
  a.set_kind(v1::ACTOR_KIND_USER);
  a.set_id("alice");
  return a;
}

class TokensTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pool_ = db_.Pool();
    ASSERT_TRUE(postgres::Migrate(*pool_, AccessMigrations()).ok());
    // An outbox of the test service "svc", as the planner has its own.
    ASSERT_TRUE(postgres::Migrate(*pool_, OutboxTestMigrations()).ok());
    key_ = *TokenKey::FromBytes(std::string(32, 'k'));
    outbox_ = std::make_unique<outbox::PostgresOutboxStore>(pool_.get(), "svc", "planner");
    store_ = std::make_unique<PostgresTokenStore>(pool_.get(), outbox_.get());
    admin_ = std::make_unique<TokenAdmin>(store_.get(), key_.get(), &clock_);
    verifier_ = std::make_unique<TokenVerifier>(store_.get(), key_.get(), &clock_);
  }

  v1::CreateTokenResponse Create(const std::string& subject, std::vector<std::string> groups = {},
                                 absl::Duration ttl = absl::ZeroDuration()) {
    v1::CreateTokenRequest req;
    req.set_subject(subject);
    for (const std::string& g : groups) req.add_groups(g);
    req.set_description("for " + subject);
    if (ttl != absl::ZeroDuration()) req.mutable_ttl()->set_seconds(absl::ToInt64Seconds(ttl));
    absl::StatusOr<v1::CreateTokenResponse> r = admin_->CreateToken(Alice(), req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : v1::CreateTokenResponse();
  }

  std::string Query(const std::string& sql) {
    return *pool_->RunInTransactionWithResult<std::string>([&](pqxx::work& t) -> absl::StatusOr<std::string> {
      std::vector<std::string> rows;
      for (const pqxx::row& row : t.exec(sql)) {
        std::vector<std::string> cells;
        for (const pqxx::field& f : row) cells.push_back(f.is_null() ? "NULL" : f.c_str());
        rows.push_back(absl::StrJoin(cells, "|"));
      }
      return absl::StrJoin(rows, "\n");
    });
  }

  std::vector<v1::Event> Events() {
    std::vector<v1::Event> out;
    absl::StatusOr<std::vector<outbox::PendingEvent>> pending = outbox_->FetchUnsent(1000);
    EXPECT_TRUE(pending.ok()) << pending.status();
    if (!pending.ok()) return out;
    for (const outbox::PendingEvent& p : *pending) out.push_back(p.event);
    return out;
  }

  ferry::testing::TestDatabase db_;
  std::unique_ptr<postgres::ConnectionPool> pool_;
  ferry::testing::FakeClock clock_;
  std::unique_ptr<const TokenKey> key_;
  std::unique_ptr<outbox::PostgresOutboxStore> outbox_;
  std::unique_ptr<PostgresTokenStore> store_;
  std::unique_ptr<TokenAdmin> admin_;
  std::unique_ptr<TokenVerifier> verifier_;
};

TEST_F(TokensTest, CreatedTokenVerifiesAsItsSubjectWithItsGroups) {
  v1::CreateTokenResponse made = Create("ci-bot", {"release", "platform"});
  EXPECT_EQ(made.secret().substr(0, 19), "ferry_" + made.token().id() + "_");
  EXPECT_EQ(made.token().subject(), "ci-bot");
  EXPECT_EQ(made.token().created_by().id(), "alice");
  EXPECT_EQ(made.token().expire_time().seconds() - made.token().create_time().seconds(), 90 * 24 * 3600);
  EXPECT_FALSE(made.token().has_revoke_time());
  absl::StatusOr<Principal> p = verifier_->Verify(made.secret());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->kind, PrincipalKind::kUser);
  EXPECT_EQ(p->id, "ci-bot");
  EXPECT_EQ(p->groups, (std::vector<std::string>{"release", "platform"}));
  EXPECT_EQ(p->method, "token:" + made.token().id());
  EXPECT_EQ(SubjectOf(*p), "user:ci-bot");
}

TEST_F(TokensTest, CreateListRevokeAndTheirAuditEvents) {
  v1::CreateTokenResponse a = Create("ci-bot");
  v1::CreateTokenResponse b = Create("deploy-bot", {"ops"});
  v1::CreateTokenResponse c = Create("ci-bot");
  v1::ListTokensRequest list;
  absl::StatusOr<v1::ListTokensResponse> all = admin_->ListTokens(list);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->tokens_size(), 3);
  EXPECT_EQ(all->tokens(0).id(), c.token().id()) << "newest first";
  EXPECT_EQ(all->tokens(2).id(), a.token().id());
  EXPECT_EQ(all->tokens(1).groups(0), "ops");
  EXPECT_EQ(all->tokens(1).description(), "for deploy-bot");
  EXPECT_EQ(all->tokens(1).created_by().id(), "alice");
  EXPECT_EQ(all->next_page_token(), "");

  list.set_subject("ci-bot");
  EXPECT_EQ(admin_->ListTokens(list)->tokens_size(), 2);
  list.clear_subject();

  v1::RevokeTokenRequest revoke;
  revoke.set_token_id(a.token().id());
  absl::StatusOr<v1::RevokeTokenResponse> revoked = admin_->RevokeToken(Alice(), revoke);
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_TRUE(revoked->token().has_revoke_time());
  // Again: nothing changes, no second event.
  clock_.Advance(absl::Seconds(5));
  absl::StatusOr<v1::RevokeTokenResponse> again = admin_->RevokeToken(Alice(), revoke);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->token().revoke_time().seconds(), revoked->token().revoke_time().seconds());

  EXPECT_EQ(admin_->ListTokens(list)->tokens_size(), 2) << "revoked tokens are not listed by default";
  list.set_include_inactive(true);
  absl::StatusOr<v1::ListTokensResponse> inactive = admin_->ListTokens(list);
  ASSERT_EQ(inactive->tokens_size(), 3);
  EXPECT_TRUE(inactive->tokens(2).has_revoke_time());

  revoke.set_token_id("0123456789ab");
  EXPECT_EQ(admin_->RevokeToken(Alice(), revoke).status().code(), absl::StatusCode::kNotFound);
  revoke.set_token_id(a.secret());
  absl::Status bad_id = admin_->RevokeToken(Alice(), revoke).status();
  EXPECT_EQ(bad_id.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad_id.message().find(a.secret().substr(19)), std::string::npos) << bad_id;

  std::vector<v1::Event> events = Events();
  ASSERT_EQ(events.size(), 4u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(events[i].action(), v1::AUDIT_ACTION_TOKEN_CREATED);
    EXPECT_EQ(events[i].actor().id(), "alice");
  }
  EXPECT_EQ(events[0].details().fields().at("token_id").string_value(), a.token().id());
  EXPECT_EQ(events[1].details().fields().at("token_subject").string_value(), "deploy-bot");
  EXPECT_EQ(events[3].action(), v1::AUDIT_ACTION_TOKEN_REVOKED);
  EXPECT_EQ(events[3].details().fields().at("token_id").string_value(), a.token().id());
  // Neither a secret nor a hash in any event.
  for (const v1::Event& e : events) {
    const std::string bytes = e.SerializeAsString();
    for (const auto* t : {&a, &b, &c}) {
      EXPECT_EQ(bytes.find(t->secret().substr(19)), std::string::npos) << e.DebugString();
      const std::string hash = key_->Hash(t->secret());
      EXPECT_EQ(bytes.find(hash), std::string::npos);
      EXPECT_EQ(bytes.find(HexEncode(hash)), std::string::npos);
    }
  }
}

TEST_F(TokensTest, ListPagesNewestFirst) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(Create(absl::StrCat("bot-", i)).token().id());
  v1::ListTokensRequest list;
  list.set_page_size(2);
  std::vector<std::string> seen;
  for (int page = 0; page < 5; ++page) {
    absl::StatusOr<v1::ListTokensResponse> r = admin_->ListTokens(list);
    ASSERT_TRUE(r.ok()) << r.status();
    for (const v1::Token& t : r->tokens()) seen.push_back(t.id());
    if (r->next_page_token().empty()) break;
    list.set_page_token(r->next_page_token());
  }
  EXPECT_EQ(seen, (std::vector<std::string>{ids[4], ids[3], ids[2], ids[1], ids[0]}));
  list.set_page_size(1001);
  EXPECT_EQ(admin_->ListTokens(list).status().code(), absl::StatusCode::kInvalidArgument);
  list.set_page_size(0);
  list.set_page_token("abc");
  EXPECT_EQ(admin_->ListTokens(list).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(TokensTest, CreateRefusesBadInputNamingTheField) {
  struct Case {
    std::function<void(v1::CreateTokenRequest&)> edit;
    std::string field;
  };
  const std::vector<Case> cases = {
      {[](auto& r) { r.set_subject(""); }, "subject"},
      {[](auto& r) { r.set_subject("has space"); }, "subject"},
      {[](auto& r) { r.set_subject("user:alice"); }, "subject"},
      {[](auto& r) { r.set_subject(std::string(129, 'a')); }, "subject"},
      {[](auto& r) { r.add_groups("ops"); r.add_groups("ops"); }, "groups[1]"},
      {[](auto& r) { r.add_groups("ok"); r.add_groups("no/slash"); }, "groups[1]"},
      {[](auto& r) { for (int i = 0; i < 65; ++i) r.add_groups(absl::StrCat("g", i)); }, "groups"},
      {[](auto& r) { r.set_description(std::string(1025, 'd')); }, "description"},
      {[](auto& r) { r.set_description("bad \xff byte"); }, "description"},
      {[](auto& r) { r.mutable_ttl()->set_seconds(-1); }, "ttl"},
      {[](auto& r) { r.mutable_ttl()->set_seconds(365 * 24 * 3600 + 1); }, "ttl"},
  };
  for (const Case& c : cases) {
    v1::CreateTokenRequest req;
    req.set_subject("ci-bot");
    c.edit(req);
    absl::Status s = admin_->CreateToken(Alice(), req).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.field << ": " << s;
    EXPECT_EQ(s.message().substr(0, c.field.size() + 1), c.field + ":") << s;
  }
  // The longest allowed values pass; a one-year token is allowed.
  v1::CreateTokenRequest req;
  req.set_subject(std::string(128, 'a'));
  req.set_description(std::string(1024, 'd'));
  req.mutable_ttl()->set_seconds(365 * 24 * 3600);
  req.add_groups("a.b_c@d-e");
  absl::StatusOr<v1::CreateTokenResponse> ok = admin_->CreateToken(Alice(), req);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->token().expire_time().seconds() - ok->token().create_time().seconds(), 365 * 24 * 3600);
  EXPECT_EQ(Query("SELECT count(*) FROM access.tokens"), "1");
  EXPECT_EQ(Events().size(), 1u);
}

TEST_F(TokensTest, CreateWithoutAKeyIsAFailedPrecondition) {
  TokenAdmin keyless(store_.get(), nullptr, &clock_);
  v1::CreateTokenRequest req;
  req.set_subject("ci-bot");
  absl::Status s = keyless.CreateToken(Alice(), req).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("--token-key-file"), std::string::npos);
}

TEST_F(TokensTest, TheSecretIsNeverStoredOnlyItsKeyedHash) {
  v1::CreateTokenResponse made = Create("ci-bot");
  const std::string secret_part = made.secret().substr(19);
  std::string secret_bytes;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(secret_part, &secret_bytes));
  const std::string row = Query("SELECT t::text FROM access.tokens t");
  EXPECT_EQ(row.find(secret_part), std::string::npos) << row;
  EXPECT_EQ(row.find(HexEncode(secret_bytes)), std::string::npos) << row;
  EXPECT_EQ(Query("SELECT encode(token_hash, 'hex') FROM access.tokens"), HexEncode(key_->Hash(made.secret())));
  // The same token under another key is another hash: a verifier with the
  // wrong key refuses it.
  auto other = *TokenKey::FromBytes(std::string(32, 'o'));
  EXPECT_NE(other->Hash(made.secret()), key_->Hash(made.secret()));
  TokenVerifier wrong_key(store_.get(), other.get(), &clock_);
  EXPECT_EQ(wrong_key.Verify(made.secret()).status().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(TokensTest, VerifyRefusesExpiredRevokedMalformedUnknownAndWrongSecret) {
  v1::CreateTokenResponse live = Create("ci-bot", {}, absl::Hours(1));
  v1::CreateTokenResponse revoked = Create("old-bot");
  v1::RevokeTokenRequest revoke;
  revoke.set_token_id(revoked.token().id());
  ASSERT_TRUE(admin_->RevokeToken(Alice(), revoke).ok());
  const std::string unknown = GenerateToken()->token;
  std::string wrong_secret = live.secret();
  wrong_secret[25] = wrong_secret[25] == 'x' ? 'y' : 'x';

  auto refusal = [&](const std::string& token) {
    absl::StatusOr<Principal> p = verifier_->Verify(token);
    EXPECT_FALSE(p.ok()) << token;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kUnauthenticated) << p.status();
    if (token.size() > 19) {
      EXPECT_EQ(p.status().message().find(token.substr(19)), std::string::npos) << p.status();
    }
    return std::string(p.status().message());
  };
  EXPECT_NE(refusal(revoked.secret()).find("API token ferry_" + revoked.token().id() + "_… was revoked at "),
            std::string::npos);
  EXPECT_NE(refusal(unknown).find("is not valid"), std::string::npos);
  EXPECT_NE(refusal(wrong_secret).find("API token ferry_" + live.token().id() + "_… is not valid"), std::string::npos);
  EXPECT_NE(refusal("ferry_" + live.token().id()).find("malformed API token"), std::string::npos);
  EXPECT_NE(refusal(live.secret() + "x").find("malformed API token"), std::string::npos);

  ASSERT_TRUE(verifier_->Verify(live.secret()).ok());
  clock_.Advance(absl::Hours(1));
  const std::string expired = refusal(live.secret());
  EXPECT_NE(expired.find("API token ferry_" + live.token().id() + "_… expired at 2023-11-14T23:13:20Z"),
            std::string::npos)
      << expired;
  TokenVerifier fresh(store_.get(), key_.get(), &clock_);
  EXPECT_EQ(fresh.Verify(live.secret()).status().code(), absl::StatusCode::kUnauthenticated);
  // Expired tokens leave the default list.
  EXPECT_EQ(admin_->ListTokens(v1::ListTokensRequest())->tokens_size(), 0);
}

TEST_F(TokensTest, LastUsedTimeIsWrittenAtMostOnceAMinute) {
  v1::CreateTokenResponse made = Create("ci-bot");
  const std::string id = made.token().id();
  auto last_used = [&] {
    return Query(absl::StrCat("SELECT extract(epoch FROM last_used_at)::bigint FROM access.tokens WHERE id = '", id,
                              "'"));
  };
  EXPECT_EQ(last_used(), "NULL");
  const int64_t t0 = absl::ToUnixSeconds(clock_.Now());
  ASSERT_TRUE(verifier_->Verify(made.secret()).ok());
  EXPECT_EQ(last_used(), absl::StrCat(t0));
  clock_.Advance(absl::Seconds(30));
  ASSERT_TRUE(verifier_->Verify(made.secret()).ok());
  EXPECT_EQ(last_used(), absl::StrCat(t0));
  clock_.Advance(absl::Seconds(31));
  ASSERT_TRUE(verifier_->Verify(made.secret()).ok());
  EXPECT_EQ(last_used(), absl::StrCat(t0 + 61));
  absl::StatusOr<v1::ListTokensResponse> listed = admin_->ListTokens(v1::ListTokensRequest());
  ASSERT_EQ(listed->tokens_size(), 1);
  EXPECT_EQ(listed->tokens(0).last_used_time().seconds(), t0 + 61);
  // Another process's verifier (its own minute) never moves it backwards.
  TokenVerifier other(store_.get(), key_.get(), &clock_);
  clock_.Set(absl::FromUnixSeconds(t0 + 10));
  ASSERT_TRUE(other.Verify(made.secret()).ok());
  EXPECT_EQ(last_used(), absl::StrCat(t0 + 61));
}

TEST_F(TokensTest, RevocationTakesEffectWithinTheCacheTtl) {
  v1::CreateTokenResponse made = Create("ci-bot");
  ASSERT_TRUE(verifier_->Verify(made.secret()).ok());
  v1::RevokeTokenRequest revoke;
  revoke.set_token_id(made.token().id());
  ASSERT_TRUE(admin_->RevokeToken(Alice(), revoke).ok());
  // Another process's cached entry is believed for at most 2 s...
  clock_.Advance(absl::Milliseconds(1999));
  EXPECT_TRUE(verifier_->Verify(made.secret()).ok());
  clock_.Advance(absl::Milliseconds(1));
  absl::StatusOr<Principal> p = verifier_->Verify(made.secret());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(p.status().message().find("revoked"), std::string::npos) << p.status();

  // ... and the process that revokes forgets it at once.
  v1::CreateTokenResponse second = Create("ci-bot");
  TokenVerifier local(store_.get(), key_.get(), &clock_);
  TokenAdmin admin(store_.get(), key_.get(), &clock_, [&](const std::string& id) { local.Forget(id); });
  ASSERT_TRUE(local.Verify(second.secret()).ok());
  revoke.set_token_id(second.token().id());
  ASSERT_TRUE(admin.RevokeToken(Alice(), revoke).ok());
  EXPECT_EQ(local.Verify(second.secret()).status().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(TokensTest, BootstrapTokenIsCreatedOnceAndSurvivesRestarts) {
  const std::string token = GenerateToken()->token;
  const std::string id = *ParseTokenId(token);
  absl::StatusOr<bool> first = admin_->EnsureBootstrapToken(token);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(*first);
  // A restart: a new admin over the same database.
  for (int restart = 0; restart < 2; ++restart) {
    TokenAdmin again(store_.get(), key_.get(), &clock_);
    absl::StatusOr<bool> ensured = again.EnsureBootstrapToken(token);
    ASSERT_TRUE(ensured.ok()) << ensured.status();
    EXPECT_FALSE(*ensured);
  }
  EXPECT_EQ(Query("SELECT id, subject, description, expires_at, created_by->>'id' FROM access.tokens"),
            id + "|admin|bootstrap admin token|NULL|ferry");
  std::vector<v1::Event> events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].action(), v1::AUDIT_ACTION_TOKEN_CREATED);
  EXPECT_EQ(events[0].actor().kind(), v1::ACTOR_KIND_SYSTEM);
  absl::StatusOr<Principal> p = verifier_->Verify(token);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->id, "admin");
  EXPECT_EQ(p->method, "token:" + id);
  // Ten years on, it still works.
  clock_.Advance(absl::Hours(24 * 3650));
  TokenVerifier later(store_.get(), key_.get(), &clock_);
  EXPECT_TRUE(later.Verify(token).ok());

  // The same id with another secret is refused, naming no secret.
  std::string other = token;
  other[30] = other[30] == 'a' ? 'b' : 'a';
  absl::Status clash = admin_->EnsureBootstrapToken(other).status();
  EXPECT_EQ(clash.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(clash.message().find(other.substr(19)), std::string::npos) << clash;
  // A revoked bootstrap token stays revoked across restarts.
  v1::RevokeTokenRequest revoke;
  revoke.set_token_id(id);
  ASSERT_TRUE(admin_->RevokeToken(Alice(), revoke).ok());
  TokenAdmin restarted(store_.get(), key_.get(), &clock_);
  EXPECT_FALSE(*restarted.EnsureBootstrapToken(token));
  TokenVerifier after(store_.get(), key_.get(), &clock_);
  EXPECT_EQ(after.Verify(token).status().code(), absl::StatusCode::kUnauthenticated);
  // Malformed: INVALID_ARGUMENT.
  EXPECT_EQ(admin_->EnsureBootstrapToken("ferry_short").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(TokensTest, ApiTokensBuildsAServicesVerifierFromTheKeyFile) {
  const std::string dir = ferry::testing::MakeTempDir("api-tokens");
  std::ofstream(dir + "/token.key") << HexEncode(std::string(32, 'k')) << "\n";
  // A service that only verifies: no outbox.
  absl::StatusOr<ApiTokens> tokens = ApiTokens::Create(dir + "/token.key", pool_.get(), &clock_);
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  v1::CreateTokenResponse made = Create("ci-bot");
  absl::StatusOr<Principal> p = tokens->verifier->Verify(made.secret());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->id, "ci-bot");
  v1::CreateTokenRequest req;
  req.set_subject("x");
  TokenAdmin verify_only(tokens->store.get(), tokens->key.get(), &clock_, tokens->ForgetOnRevoke());
  EXPECT_EQ(verify_only.CreateToken(Alice(), req).status().code(), absl::StatusCode::kFailedPrecondition);
  // Revoked through an admin wired with ForgetOnRevoke: refused at once.
  absl::StatusOr<ApiTokens> planner = ApiTokens::Create(dir + "/token.key", pool_.get(), &clock_, outbox_.get());
  ASSERT_TRUE(planner.ok());
  TokenAdmin admin(planner->store.get(), planner->key.get(), &clock_, planner->ForgetOnRevoke());
  ASSERT_TRUE(planner->verifier->Verify(made.secret()).ok());
  v1::RevokeTokenRequest revoke;
  revoke.set_token_id(made.token().id());
  ASSERT_TRUE(admin.RevokeToken(Alice(), revoke).ok());
  EXPECT_EQ(planner->verifier->Verify(made.secret()).status().code(), absl::StatusCode::kUnauthenticated);

  absl::StatusOr<ApiTokens> unset = ApiTokens::Create("", pool_.get(), &clock_);
  ASSERT_FALSE(unset.ok());
  EXPECT_NE(unset.status().message().find("--token-key-file"), std::string::npos);
}

TEST_F(TokensTest, AccessMigrationRunsOnceWhenServicesStartTogether) {
  // Every service migrates `access` at start (server::Bootstrap); again is a no-op.
  EXPECT_TRUE(postgres::Migrate(*pool_, AccessMigrations()).ok());
  EXPECT_EQ(Query("SELECT count(*) FROM access.schema_migrations"), "1");
}

}  // namespace
}  // namespace ferry::auth
