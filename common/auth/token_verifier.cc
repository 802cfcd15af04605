#include "common/auth/token_verifier.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging/logger.h"

namespace ferry::auth {
namespace {

std::string UtcText(absl::Time t) { return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone()); }

absl::Status NotValid(const std::string& id) {
  return absl::UnauthenticatedError(
      absl::StrCat("API token ", TokenDisplay(id), " is not valid (unknown id or wrong secret)"));
}

absl::Status Expired(const std::string& id, absl::Time at) {
  return absl::UnauthenticatedError(absl::StrCat("API token ", TokenDisplay(id), " expired at ", UtcText(at)));
}

}  // namespace

TokenVerifier::TokenVerifier(TokenStore* store, const TokenKey* key, const Clock* clock, TokenVerifierOptions options)
    : store_(store), key_(key), clock_(clock), options_(options) {}

bool TokenVerifier::Recognizes(std::string_view token) const { return HasTokenPrefix(token); }

Principal TokenVerifier::PrincipalOf(const std::string& id, const std::string& subject,
                                     const std::vector<std::string>& groups) const {
  Principal p;
  p.kind = PrincipalKind::kUser;
  p.id = subject;
  p.groups = groups;
  p.method = absl::StrCat("token:", id);
  return p;
}

absl::StatusOr<Principal> TokenVerifier::Verify(std::string_view token) {
  absl::StatusOr<std::string> parsed = ParseTokenId(token);
  if (!parsed.ok()) return absl::UnauthenticatedError(parsed.status().message());
  const std::string& id = *parsed;
  // The cache is keyed by the keyed hash: only the exact token string hits,
  // and comparing keys reveals nothing about a secret (nobody can choose a
  // hash without the key).
  const std::string hash = key_->Hash(token);
  const absl::Time now = clock_->Now();
  std::optional<Principal> cached;
  {
    MutexLock lock(&mu_);
    auto it = cache_.find(hash);
    if (it != cache_.end() && it->second.cached_until > now) {
      if (it->second.expire_time <= now) {
        absl::Time expired = it->second.expire_time;
        cache_.erase(it);
        return Expired(id, expired);
      }
      cached = PrincipalOf(it->second.id, it->second.subject, it->second.groups);
    }
  }
  if (cached.has_value()) {
    NoteUse(id, now);
    return *std::move(cached);
  }
  absl::StatusOr<StoredToken> stored = store_->Lookup(id);
  if (absl::IsNotFound(stored.status())) return NotValid(id);
  if (!stored.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot check API token ", TokenDisplay(id), ": ", stored.status().message()));
  }
  if (!key_->Matches(token, stored->token_hash)) return NotValid(id);
  const TokenRecord& r = stored->record;
  if (r.revoked()) {
    return absl::UnauthenticatedError(
        absl::StrCat("API token ", TokenDisplay(id), " was revoked at ", UtcText(r.revoke_time)));
  }
  if (r.expire_time <= now) return Expired(id, r.expire_time);
  {
    MutexLock lock(&mu_);
    if (cache_.size() >= options_.max_cache_entries) {
      for (auto it = cache_.begin(); it != cache_.end();) {
        it = it->second.cached_until <= now ? cache_.erase(it) : std::next(it);
      }
      if (cache_.size() >= options_.max_cache_entries) cache_.clear();
    }
    cache_[hash] = Cached{.id = id,
                          .groups = r.groups,
                          .subject = r.subject,
                          .expire_time = r.expire_time,
                          .cached_until = now + options_.cache_ttl};
  }
  NoteUse(id, now);
  return PrincipalOf(id, r.subject, r.groups);
}

void TokenVerifier::Forget(const std::string& id) {
  MutexLock lock(&mu_);
  for (auto it = cache_.begin(); it != cache_.end();) {
    it = it->second.id == id ? cache_.erase(it) : std::next(it);
  }
}

void TokenVerifier::NoteUse(const std::string& id, absl::Time now) {
  {
    MutexLock lock(&mu_);
    auto it = last_written_.find(id);
    if (it != last_written_.end() && now - it->second < options_.last_used_interval) return;
    if (last_written_.size() >= options_.max_cache_entries) {
      for (auto i = last_written_.begin(); i != last_written_.end();) {
        i = now - i->second >= options_.last_used_interval ? last_written_.erase(i) : std::next(i);
      }
    }
    last_written_[id] = now;
  }
  absl::Status touched = store_->TouchLastUsed(id, now);
  if (!touched.ok()) {
    logging::Warn("cannot record an API token's last use",
                  {{"token", TokenDisplay(id)}, {"error", std::string(touched.message())}});
  }
}

}  // namespace ferry::auth
