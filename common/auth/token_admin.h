#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/auth/principal.h"
#include "common/auth/token.h"
#include "common/auth/token_store.h"
#include "common/clock/clock.h"
#include "ferry/v1/access.pb.h"
#include "ferry/v1/common.pb.h"

namespace ferry::auth {

inline constexpr absl::Duration kDefaultTokenTtl = absl::Hours(24 * 90);
inline constexpr absl::Duration kMaxTokenTtl = absl::Hours(24 * 365);
inline constexpr size_t kMaxTokenNameLength = 128;  // subject and each group
inline constexpr int kMaxTokenGroups = 64;
inline constexpr size_t kMaxTokenDescriptionBytes = 1024;

// The logic of the Access service's token RPCs (CreateToken, ListTokens,
// RevokeToken): validating input, making tokens and recording who did what.
// Each change writes its audit event (AUDIT_ACTION_TOKEN_CREATED,
// AUDIT_ACTION_TOKEN_REVOKED) in the store's transaction; no event, log line
// or error ever holds a secret or a hash. Thread-safe.
class TokenAdmin {
 public:
  // `key` may be null (no --token-key-file): CreateToken and the bootstrap
  // token are then FAILED_PRECONDITION; listing and revoking still work.
  // `on_revoked` (may be empty) is told the id of each token revoked, e.g.
  // TokenVerifier::Forget of this process.
  TokenAdmin(TokenStore* store, const TokenKey* key, const Clock* clock,
             std::function<void(const std::string& id)> on_revoked = nullptr);

  // INVALID_ARGUMENT names the field: subject (1-128 characters of
  // [A-Za-z0-9._@-]), groups[i] (the same shape, at most 64, no repeats),
  // description (at most 1 KiB of UTF-8), ttl (0 = 90 days, at most 365
  // days). The response holds the only copy of the secret.
  absl::StatusOr<v1::CreateTokenResponse> CreateToken(const v1::Actor& actor, const v1::CreateTokenRequest& request);

  // Newest first, paged like other List RPCs (common/api/page_size.h).
  absl::StatusOr<v1::ListTokensResponse> ListTokens(const v1::ListTokensRequest& request);

  // NOT_FOUND for an unknown id; INVALID_ARGUMENT for one that is not 12
  // lowercase hex characters. Revoking a revoked token returns it unchanged.
  absl::StatusOr<v1::RevokeTokenResponse> RevokeToken(const v1::Actor& actor, const v1::RevokeTokenRequest& request);

  // Makes sure the exact token `token` exists (the planner's
  // --bootstrap-admin-token-file, which `make up` writes): created for the
  // subject "admin", described "bootstrap admin token", never expiring, by
  // the system actor, when its id is unknown; nothing when it is stored with
  // this secret (a restart), even if it was revoked since (a revoked
  // bootstrap token stays revoked). INVALID_ARGUMENT for a malformed token,
  // ALREADY_EXISTS when its id is stored with another secret. Returns
  // whether it was created now.
  absl::StatusOr<bool> EnsureBootstrapToken(const std::string& token);

 private:
  v1::Event MakeEvent(v1::AuditAction action, const v1::Actor& actor, const TokenRecord& r,
                      const std::string& message) const;

  TokenStore* const store_;
  const TokenKey* const key_;
  const Clock* const clock_;
  const std::function<void(const std::string&)> on_revoked_;
};

// The Access.Token message of a stored record (no secret, no hash).
v1::Token ToProto(const TokenRecord& r);

// WhoAmI's answer for an authenticated principal.
v1::WhoAmIResponse WhoAmIOf(const Principal& p);

}  // namespace ferry::auth
