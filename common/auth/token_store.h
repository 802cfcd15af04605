#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ferry/v1/audit.pb.h"
#include "ferry/v1/common.pb.h"

namespace ferry::auth {

// One API token as stored: never its secret.
struct TokenRecord {
  std::string id;  // 12 lowercase hex characters
  std::string subject;
  std::vector<std::string> groups;
  std::string description;
  v1::Actor created_by;
  absl::Time create_time = absl::InfinitePast();
  absl::Time expire_time = absl::InfiniteFuture();     // InfiniteFuture: never expires
  absl::Time revoke_time = absl::InfiniteFuture();     // InfiniteFuture: not revoked
  absl::Time last_used_time = absl::InfinitePast();    // InfinitePast: never used
  int64_t seq = 0;  // the store's order of creation, for paging

  bool revoked() const { return revoke_time != absl::InfiniteFuture(); }
};

// A record and the keyed hash of its token (common/auth/token.h).
struct StoredToken {
  TokenRecord record;
  std::string token_hash;  // HMAC-SHA256(token key, token): 32 raw bytes
};

struct TokenFilter {
  std::string subject;  // empty: every subject
  // When false, only tokens neither revoked nor expired at `now`.
  bool include_inactive = false;
  absl::Time now;
  int64_t before_seq = 0;  // > 0: only tokens created before this one (the next page)
  int limit = 50;
};

struct TokenPage {
  std::vector<TokenRecord> tokens;  // newest first
  bool more = false;                // another page follows
};

// Where API tokens are kept (schema `access`, shared by every service: the
// planner creates and revokes them, every service verifies them).
// Implementations are thread-safe. Errors reaching the store are UNAVAILABLE
// (retry) or INTERNAL.
class TokenStore {
 public:
  virtual ~TokenStore() = default;

  // Adds a token and, in the same transaction, the audit event `created`.
  // ALREADY_EXISTS when a token has that id.
  virtual absl::Status Create(const StoredToken& token, const v1::Event& created) = 0;

  // The token with this id; NOT_FOUND when there is none.
  virtual absl::StatusOr<StoredToken> Lookup(const std::string& id) = 0;

  // A page of tokens, newest first.
  virtual absl::StatusOr<TokenPage> List(const TokenFilter& filter) = 0;

  // Revokes the token at `when` and, in the same transaction, records the
  // event `revoked(record)` returns for the revoked record. A token already
  // revoked is returned as it is, with no event. NOT_FOUND for an unknown id.
  virtual absl::StatusOr<TokenRecord> Revoke(const std::string& id, absl::Time when,
                                             const std::function<v1::Event(const TokenRecord&)>& revoked) = 0;

  // Records that the token authenticated a call at `when` (never moves
  // last_used_time backwards). An unknown id is not an error.
  virtual absl::Status TouchLastUsed(const std::string& id, absl::Time when) = 0;
};

}  // namespace ferry::auth
