#pragma once

#include <string>

#include "common/auth/token_store.h"
#include "common/outbox/outbox_store.h"
#include "common/postgres/connection_pool.h"

namespace ferry::auth {

// TokenStore on the table access.tokens (common/auth/schema/001_tokens.sql,
// migrated by every service through server::Bootstrap). Audit events of
// Create and Revoke go through `outbox` in the same transaction; a store
// made without one (nullptr: a service that only verifies tokens) refuses
// Create and Revoke with FAILED_PRECONDITION.
class PostgresTokenStore final : public TokenStore {
 public:
  PostgresTokenStore(postgres::ConnectionPool* pool, outbox::OutboxStore* outbox);

  absl::Status Create(const StoredToken& token, const v1::Event& created) override;
  absl::StatusOr<StoredToken> Lookup(const std::string& id) override;
  absl::StatusOr<TokenPage> List(const TokenFilter& filter) override;
  absl::StatusOr<TokenRecord> Revoke(const std::string& id, absl::Time when,
                                     const std::function<v1::Event(const TokenRecord&)>& revoked) override;
  absl::Status TouchLastUsed(const std::string& id, absl::Time when) override;

 private:
  postgres::ConnectionPool* pool_;
  outbox::OutboxStore* outbox_;
};

}  // namespace ferry::auth
