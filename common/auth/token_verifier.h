#pragma once

#include <map>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "common/auth/bearer_verifier.h"
#include "common/auth/token.h"
#include "common/auth/token_store.h"
#include "common/clock/clock.h"
#include "common/concurrency/mutex.h"

namespace ferry::auth {

struct TokenVerifierOptions {
  // How long a verified token is believed without asking the store again.
  // Revocation takes effect within this time in every service (at once in
  // the process that revoked, see Forget).
  absl::Duration cache_ttl = absl::Seconds(2);
  // How often a token's last_used_time is written, at most.
  absl::Duration last_used_interval = absl::Minutes(1);
  // Most tokens cached; when full, expired entries go, then all of them.
  size_t max_cache_entries = 10000;
};

// Verifies Ferry API tokens (common/auth/token.h): shape, the token id's
// record in the store, the keyed hash of the whole token (constant-time
// compare), expiry and revocation. A valid token is the principal
// {kind user, id subject, groups, method "token:<id>"}.
//
// Refusals are UNAUTHENTICATED and name the token only by its id
// ("API token ferry_0123456789ab_… expired at 2026-01-02T03:04:05Z"), never
// its secret; an unknown id and a wrong secret get the same answer, before
// expiry or revocation is looked at. When the store cannot be reached: UNAVAILABLE.
//
// A verified token is cached for options.cache_ttl (keyed by its keyed hash,
// so only the exact token string hits), so that a busy caller costs one
// query per cache_ttl, not one per call; its expiry is still checked on
// every call. last_used_time is written on the verifying thread, at most
// once per last_used_interval per token (one cheap UPDATE; a failure is
// logged, not the caller's problem). Thread-safe.
class TokenVerifier final : public BearerVerifier {
 public:
  TokenVerifier(TokenStore* store, const TokenKey* key, const Clock* clock, TokenVerifierOptions options = {});

  bool Recognizes(std::string_view token) const override;
  absl::StatusOr<Principal> Verify(std::string_view token) override;

  // Drops the cached entries of the token `id` (called when it is revoked in
  // this process, so that revocation is immediate here).
  void Forget(const std::string& id);

 private:
  struct Cached {
    std::string id;
    std::vector<std::string> groups;
    std::string subject;
    absl::Time expire_time;
    absl::Time cached_until;
  };

  Principal PrincipalOf(const std::string& id, const std::string& subject, const std::vector<std::string>& groups) const;
  // Writes last_used_time when due.
  void NoteUse(const std::string& id, absl::Time now);

  TokenStore* const store_;
  const TokenKey* const key_;
  const Clock* const clock_;
  const TokenVerifierOptions options_;

  mutable Mutex mu_;
  std::map<std::string, Cached> cache_ ABSL_GUARDED_BY(mu_);      // by keyed hash
  std::map<std::string, absl::Time> last_written_ ABSL_GUARDED_BY(mu_);  // by token id
};

}  // namespace ferry::auth
