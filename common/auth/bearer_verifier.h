#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "common/auth/principal.h"

namespace ferry::auth {

// Checks one kind of bearer credential (the value of `authorization: Bearer
// ...`): Ferry API tokens (token_verifier.h) or OIDC JWTs (jwt_verifier.h).
// Implementations are thread-safe.
class BearerVerifier {
 public:
  virtual ~BearerVerifier() = default;

  // Whether `token` has this verifier's shape (an API token's "ferry_"
  // prefix, a JWT's three dot-separated parts). Cheap, no I/O.
  virtual bool Recognizes(std::string_view token) const = 0;

  // The user principal the token proves, or UNAUTHENTICATED with a reason
  // that names no secret ("token expired", "token revoked", "JWT audience
  // does not match", ...); UNAVAILABLE when what it needs (the database, a
  // JWKS URL) cannot be reached.
  virtual absl::StatusOr<Principal> Verify(std::string_view token) = 0;
};

}  // namespace ferry::auth
