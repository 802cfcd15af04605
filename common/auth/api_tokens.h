#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/auth/postgres_token_store.h"
#include "common/auth/token.h"
#include "common/auth/token_verifier.h"
#include "common/clock/clock.h"

namespace ferry::auth {

// What a service needs to verify API tokens, built in one call from
// main.cc (link ferry_auth_tokens_postgres):
//
//   absl::StatusOr<auth::ApiTokens> tokens =
//       auth::ApiTokens::Create(config.token_key_file, infra->pool.get(), &clock);
//   ... tokens->verifier.get() is the BearerVerifier for the Authenticator ...
//
// The planner, which also creates and revokes tokens, passes its outbox and
// hands `store` and `key` to its TokenAdmin, with `verifier->Forget` as
// TokenAdmin's on_revoked. Errors are TokenKey::FromFile's, naming
// --token-key-file.
struct ApiTokens {
  std::unique_ptr<const TokenKey> key;
  std::unique_ptr<PostgresTokenStore> store;
  std::unique_ptr<TokenVerifier> verifier;

  static absl::StatusOr<ApiTokens> Create(const std::string& key_file, postgres::ConnectionPool* pool,
                                          const Clock* clock, outbox::OutboxStore* outbox = nullptr,
                                          TokenVerifierOptions options = {}) {
    absl::StatusOr<std::unique_ptr<const TokenKey>> key = TokenKey::FromFile(key_file);
    if (!key.ok()) return key.status();
    ApiTokens out;
    out.key = std::move(*key);
    out.store = std::make_unique<PostgresTokenStore>(pool, outbox);
    out.verifier = std::make_unique<TokenVerifier>(out.store.get(), out.key.get(), clock, options);
    return out;
  }

  // TokenAdmin's on_revoked: revocation takes effect at once in this process.
  std::function<void(const std::string&)> ForgetOnRevoke() const {
    TokenVerifier* v = verifier.get();
    return [v](const std::string& id) { v->Forget(id); };
  }
};

}  // namespace ferry::auth
