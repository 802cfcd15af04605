#include "common/auth/token_admin.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/time_util.h>

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/api/page_size.h"
#include "common/logging/logger.h"
#include "common/status/status_macros.h"
#include "common/text/utf8.h"

namespace ferry::auth {
namespace {

using google::protobuf::util::TimeUtil;

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '@' || c == '-';
}

// A subject or group: 1-128 characters of [A-Za-z0-9._@-]. The message
// quotes the value only when it is short and printable.
absl::Status CheckName(const std::string& field, const std::string& value) {
  if (value.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": must not be empty"));
  if (value.size() > kMaxTokenNameLength) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": longer than ", kMaxTokenNameLength, " characters"));
  }
  for (char c : value) {
    if (!IsNameChar(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": only letters, digits and . _ @ - are allowed, not \"", text::SanitizeUtf8(value), "\""));
    }
  }
  return absl::OkStatus();
}

v1::Actor SystemActor() {
  v1::Actor a;
  a.set_kind(v1::ACTOR_KIND_SYSTEM);
  a.set_id("ferry");
  return a;
}

std::string UtcText(absl::Time t) { return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone()); }

}  // namespace

v1::Token ToProto(const TokenRecord& r) {
  v1::Token t;
  t.set_id(r.id);
  t.set_subject(r.subject);
  for (const std::string& g : r.groups) t.add_groups(g);
  t.set_description(r.description);
  *t.mutable_created_by() = r.created_by;
  if (r.create_time != absl::InfinitePast()) *t.mutable_create_time() = ToTimestamp(r.create_time);
  if (r.expire_time != absl::InfiniteFuture()) *t.mutable_expire_time() = ToTimestamp(r.expire_time);
  if (r.revoked()) *t.mutable_revoke_time() = ToTimestamp(r.revoke_time);
  if (r.last_used_time != absl::InfinitePast()) *t.mutable_last_used_time() = ToTimestamp(r.last_used_time);
  return t;
}

v1::WhoAmIResponse WhoAmIOf(const Principal& p) {
  v1::WhoAmIResponse out;
  out.set_subject(SubjectOf(p));
  switch (p.kind) {
    case PrincipalKind::kAnonymous:
      out.set_kind(v1::PRINCIPAL_KIND_ANONYMOUS);
      break;
    case PrincipalKind::kUser:
      out.set_kind(v1::PRINCIPAL_KIND_USER);
      break;
    case PrincipalKind::kService:
      out.set_kind(v1::PRINCIPAL_KIND_SERVICE);
      break;
  }
  out.set_id(p.id);
  for (const std::string& g : p.groups) out.add_groups(g);
  out.set_method(p.method);
  out.set_acting_for(p.acting_for);
  return out;
}

TokenAdmin::TokenAdmin(TokenStore* store, const TokenKey* key, const Clock* clock,
                       std::function<void(const std::string& id)> on_revoked)
    : store_(store), key_(key), clock_(clock), on_revoked_(std::move(on_revoked)) {}

v1::Event TokenAdmin::MakeEvent(v1::AuditAction action, const v1::Actor& actor, const TokenRecord& r,
                                const std::string& message) const {
  v1::Event e;
  e.set_action(action);
  *e.mutable_actor() = actor.id().empty() ? SystemActor() : actor;
  e.set_message(message);
  *e.mutable_time() = ToTimestamp(clock_->Now());
  // One creation and one revocation per token: its id and the time make
  // the key unique.
  e.set_idempotency_key(absl::StrCat(action == v1::AUDIT_ACTION_TOKEN_CREATED ? "token-created/" : "token-revoked/",
                                     r.id, "/", absl::ToUnixMicros(clock_->Now())));
  auto& f = *e.mutable_details()->mutable_fields();
  f["token_id"].set_string_value(r.id);
  f["token_subject"].set_string_value(r.subject);
  auto* groups = f["token_groups"].mutable_list_value();
  for (const std::string& g : r.groups) groups->add_values()->set_string_value(g);
  if (action == v1::AUDIT_ACTION_TOKEN_CREATED) {
    f["description"].set_string_value(r.description);
    f["expire_time"].set_string_value(r.expire_time == absl::InfiniteFuture() ? "never" : UtcText(r.expire_time));
  }
  return e;
}

absl::StatusOr<v1::CreateTokenResponse> TokenAdmin::CreateToken(const v1::Actor& actor,
                                                                const v1::CreateTokenRequest& request) {
  RETURN_IF_ERROR(CheckName("subject", request.subject()));
  if (request.groups_size() > kMaxTokenGroups) {
    return absl::InvalidArgumentError(absl::StrCat("groups: at most ", kMaxTokenGroups, " are allowed"));
  }
  std::set<std::string> seen;
  for (int i = 0; i < request.groups_size(); ++i) {
    const std::string field = absl::StrCat("groups[", i, "]");
    RETURN_IF_ERROR(CheckName(field, request.groups(i)));
    if (!seen.insert(request.groups(i)).second) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": \"", request.groups(i), "\" is listed twice"));
    }
  }
  if (request.description().size() > kMaxTokenDescriptionBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("description: longer than ", kMaxTokenDescriptionBytes, " bytes"));
  }
  if (!text::IsValidUtf8(request.description())) {
    return absl::InvalidArgumentError("description: not valid UTF-8");
  }
  absl::Duration ttl = kDefaultTokenTtl;
  if (request.has_ttl()) {
    if (request.ttl().seconds() < 0 || request.ttl().nanos() < 0) {
      return absl::InvalidArgumentError("ttl: must not be negative");
    }
    absl::Duration asked =
        absl::Seconds(request.ttl().seconds()) + absl::Nanoseconds(request.ttl().nanos());
    if (asked > kMaxTokenTtl) {
      return absl::InvalidArgumentError(
          absl::StrCat("ttl: at most ", absl::FormatDuration(kMaxTokenTtl), " (365 days)"));
    }
    if (asked > absl::ZeroDuration()) ttl = asked;
  }
  if (key_ == nullptr) {
    return absl::FailedPreconditionError(
        "API tokens cannot be created: this planner has no token key (--token-key-file)");
  }
  const v1::Actor creator = actor.id().empty() ? SystemActor() : actor;
  const absl::Time now = clock_->Now();
  // A 48-bit id may, very rarely, be taken: draw again.
  for (int attempt = 0;; ++attempt) {
    ASSIGN_OR_RETURN(NewToken made, GenerateToken());
    StoredToken stored;
    TokenRecord& r = stored.record;
    r.id = made.id;
    r.subject = request.subject();
    r.groups.assign(request.groups().begin(), request.groups().end());
    r.description = request.description();
    r.created_by = creator;
    r.create_time = now;
    r.expire_time = now + ttl;
    stored.token_hash = key_->Hash(made.token);
    v1::Event event = MakeEvent(
        v1::AUDIT_ACTION_TOKEN_CREATED, creator, r,
        absl::StrCat("API token ", TokenDisplay(r.id), " created for ", r.subject,
                     r.groups.empty() ? "" : absl::StrCat(" (groups ", absl::StrJoin(r.groups, ", "), ")"),
                     ", expires ", UtcText(r.expire_time)));
    absl::Status created = store_->Create(stored, event);
    if (absl::IsAlreadyExists(created) && attempt < 3) continue;
    RETURN_IF_ERROR(created);
    logging::Info("API token created", {{"token", TokenDisplay(r.id)}, {"subject", r.subject}, {"by", creator.id()}});
    v1::CreateTokenResponse out;
    // Times as the store keeps them (microseconds).
    r.create_time = absl::FromUnixMicros(absl::ToUnixMicros(r.create_time));
    r.expire_time = absl::FromUnixMicros(absl::ToUnixMicros(r.expire_time));
    *out.mutable_token() = ToProto(r);
    out.set_secret(std::move(made.token));
    return out;
  }
}

absl::StatusOr<v1::ListTokensResponse> TokenAdmin::ListTokens(const v1::ListTokensRequest& request) {
  ASSIGN_OR_RETURN(int size, api::PageSize(request.page_size()));
  TokenFilter f;
  f.subject = request.subject();
  f.include_inactive = request.include_inactive();
  f.now = clock_->Now();
  f.limit = size;
  ASSIGN_OR_RETURN(f.before_seq, api::SequencePageToken(request.page_token(), "not a token from ListTokens"));
  ASSIGN_OR_RETURN(TokenPage page, store_->List(f));
  v1::ListTokensResponse out;
  for (const TokenRecord& r : page.tokens) *out.add_tokens() = ToProto(r);
  if (page.more && !page.tokens.empty()) out.set_next_page_token(absl::StrCat(page.tokens.back().seq));
  return out;
}

absl::StatusOr<v1::RevokeTokenResponse> TokenAdmin::RevokeToken(const v1::Actor& actor,
                                                                const v1::RevokeTokenRequest& request) {
  if (!IsTokenId(request.token_id())) {
    return absl::InvalidArgumentError(
        "token_id: must be the 12 lowercase hex characters after \"ferry_\" (Token.id from ListTokens)");
  }
  const absl::Time now = clock_->Now();
  ASSIGN_OR_RETURN(TokenRecord r, store_->Revoke(request.token_id(), now, [&](const TokenRecord& revoked) {
                     return MakeEvent(v1::AUDIT_ACTION_TOKEN_REVOKED, actor, revoked,
                                      absl::StrCat("API token ", TokenDisplay(revoked.id), " of ", revoked.subject,
                                                   " revoked"));
                   }));
  if (on_revoked_) on_revoked_(r.id);
  logging::Info("API token revoked", {{"token", TokenDisplay(r.id)}, {"by", actor.id()}});
  v1::RevokeTokenResponse out;
  *out.mutable_token() = ToProto(r);
  return out;
}

absl::StatusOr<bool> TokenAdmin::EnsureBootstrapToken(const std::string& token) {
  ASSIGN_OR_RETURN(std::string id, ParseTokenId(token));
  if (key_ == nullptr) {
    return absl::FailedPreconditionError("a bootstrap admin token needs the token key (--token-key-file)");
  }
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<StoredToken> stored = store_->Lookup(id);
    if (stored.ok()) {
      if (!key_->Matches(token, stored->token_hash)) {
        return absl::AlreadyExistsError(absl::StrCat(
            "API token ", TokenDisplay(id), " exists with another secret (or another --token-key-file)"));
      }
      if (stored->record.revoked()) {
        logging::Warn("the bootstrap admin token was revoked and stays revoked", {{"token", TokenDisplay(id)}});
      }
      return false;
    }
    if (!absl::IsNotFound(stored.status())) return stored.status();
    StoredToken fresh;
    TokenRecord& r = fresh.record;
    r.id = id;
    r.subject = "admin";
    r.description = "bootstrap admin token";
    r.created_by = SystemActor();
    r.create_time = clock_->Now();
    fresh.token_hash = key_->Hash(token);
    absl::Status created = store_->Create(
        fresh, MakeEvent(v1::AUDIT_ACTION_TOKEN_CREATED, r.created_by, r,
                         absl::StrCat("bootstrap API token ", TokenDisplay(id), " created for admin")));
    // Another replica created it meanwhile: look again.
    if (absl::IsAlreadyExists(created) && attempt < 1) continue;
    RETURN_IF_ERROR(created);
    logging::Info("bootstrap admin token created", {{"token", TokenDisplay(id)}});
    return true;
  }
}

}  // namespace ferry::auth
