#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/auth/bearer_verifier.h"
#include "common/auth/policy.h"
#include "common/auth/principal.h"
#include "common/clock/clock.h"
#include "common/concurrency/mutex.h"

namespace ferry::auth {

// OIDC bearer tokens: JWTs (compact JWS) signed by one of the policy's
// trusted issuers (policy.h `OidcIssuer`). Signatures are checked by cjose
// against the issuer's JWKS, never by hand.
//
// A token is accepted when, in this order:
//   - it is at most 16 KiB, three base64url parts whose first two are JSON
//     objects;
//   - its `iss` names a trusted issuer;
//   - its header's `alg` is RS256/384/512, PS256/384/512 or ES256/384/512
//     (`none` and every HS* are refused: an HMAC "signed" with the issuer's
//     public key proves nothing), it has no `crit`, and keys in the header
//     (`jwk`, `jku`, `x5u`, `x5c`) are ignored;
//   - the key is the JWKS key named by `kid` (the only key when there is no
//     `kid`), of the type the alg needs (RSA of 2048 bits or more, EC on the
//     alg's curve), with no other `alg` and no `use` but "sig";
//   - cjose verifies the signature with it;
//   - `exp` (required) is after now, `nbf` and `iat` (optional) not after
//     now, each with the issuer's clock_skew;
//   - `aud` (a string or an array) contains the issuer's audience;
//   - the username claim is a non-empty string (at most 256 bytes, no
//     control characters) and the groups claim, when present, is a string or
//     an array of strings.
// The principal is the user named by the username claim, with the groups,
// and method "oidc:<issuer>". Refusals are UNAUTHENTICATED naming the check
// that failed, never the token; UNAVAILABLE when the issuer's keys cannot be
// had at all.
//
// JWKS: from `jwks_file` (re-read when its mtime, size or inode change) or
// `jwks_url` (https; http only to a loopback address; no redirects; 5 s
// timeout; 1 MiB at most), cached per issuer. A token whose `kid` is not in
// the cache refetches the URL, at most once per 30 s per issuer (key
// rotation); keys older than an hour are refreshed too. A failed refresh
// keeps the cached keys in service (logged); a failed fetch with no keys
// cached is UNAVAILABLE (retried at most every 5 s).
//
// Thread-safe. Fetches for one issuer are serialised; verifications with
// keys at hand never wait for a fetch that only refreshes old keys.
class JwtVerifier final : public BearerVerifier {
 public:
  struct Options {
    size_t max_token_bytes = 16 * 1024;
    // Least time between two fetches of one issuer's URL while it has keys
    // (unknown kid, or a refresh).
    absl::Duration refetch_interval = absl::Seconds(30);
    // Least time between two fetches while an issuer has no keys at all.
    absl::Duration retry_without_keys = absl::Seconds(5);
    // Keys fetched longer ago than this are refreshed (URL only).
    absl::Duration max_key_age = absl::Hours(1);
    absl::Duration fetch_timeout = absl::Seconds(5);
    size_t max_jwks_bytes = 1024 * 1024;
  };

  // `issuers` gives the trusted issuers in force (the current policy's),
  // called on every verification; `clock` must outlive the verifier.
  JwtVerifier(std::function<std::vector<OidcIssuer>()> issuers, const Clock* clock);
  JwtVerifier(std::function<std::vector<OidcIssuer>()> issuers, const Clock* clock, Options options);
  ~JwtVerifier() override;

  // Three base64url parts separated by dots (the signature may be empty, so
  // that an unsigned token is refused by name), not starting with "ferry_".
  bool Recognizes(std::string_view token) const override;
  absl::StatusOr<Principal> Verify(std::string_view token) override;

  // Defined in jwt_verifier.cc.
  struct KeySet;
  struct IssuerKeys;

 private:
  std::shared_ptr<IssuerKeys> EntryFor(const OidcIssuer& issuer);
  // The issuer's keys, fetched or re-read as needed; `kid` is the token's
  // ("" for none) so that an unknown one triggers a refetch.
  absl::StatusOr<std::shared_ptr<const KeySet>> KeysFor(const OidcIssuer& issuer, const std::string& kid);
  absl::StatusOr<std::shared_ptr<const KeySet>> FileKeys(const OidcIssuer& issuer, IssuerKeys& entry);
  absl::StatusOr<std::shared_ptr<const KeySet>> UrlKeys(const OidcIssuer& issuer, IssuerKeys& entry,
                                                        const std::string& kid);

  const std::function<std::vector<OidcIssuer>()> issuers_;
  const Clock* const clock_;
  const Options options_;

  Mutex mu_;
  // By issuer; an entry is replaced when its JWKS source changes.
  std::map<std::string, std::shared_ptr<IssuerKeys>> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::auth
