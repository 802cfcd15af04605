#include "common/secrets/vault_kv_client.h"

#include <fstream>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/json/json.h"
#include "common/secrets/vault_responses.h"
#include "common/status/status_macros.h"

namespace ferry::secrets {
namespace {

constexpr size_t kMaxPathBytes = 512;
constexpr size_t kMaxFieldBytes = 256;
constexpr size_t kMaxCredentialBytes = 64 * 1024;
constexpr size_t kMaxCacheEntries = 4096;

// Each "/"-separated segment percent-encoded (RFC 3986 unreserved kept).
std::string EncodePath(const std::string& path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : path) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string WithErrors(std::string message, const VaultResponse& r) {
  const std::string errors = VaultErrors(r.body);
  if (!errors.empty()) absl::StrAppend(&message, " (", errors, ")");
  return message;
}

// A credential file's content without trailing whitespace. The content is
// never in a message.
absl::StatusOr<std::string> ReadCredentialFile(const std::string& path, const std::string& flag) {
  if (path.empty()) return absl::FailedPreconditionError(absl::StrCat(flag, ": not set"));
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::FailedPreconditionError(absl::StrCat(flag, ": cannot read \"", path, "\""));
  std::string text(kMaxCredentialBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return absl::FailedPreconditionError(absl::StrCat(flag, ": cannot read \"", path, "\""));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxCredentialBytes) {
    return absl::FailedPreconditionError(
        absl::StrCat(flag, ": \"", path, "\" is larger than ", kMaxCredentialBytes, " bytes"));
  }
  while (!text.empty() && absl::ascii_isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  if (text.empty()) return absl::FailedPreconditionError(absl::StrCat(flag, ": \"", path, "\" is empty"));
  for (unsigned char c : text) {
    if (c < 0x20 || c == 0x7f) {
      return absl::FailedPreconditionError(
          absl::StrCat(flag, ": \"", path, "\" holds a control character (expected one line)"));
    }
  }
  return text;
}

bool Retryable(int status) { return status == 429 || status >= 500; }

}  // namespace

VaultKvClient::VaultKvClient(std::unique_ptr<VaultHttp> http, VaultKvOptions options, const Clock* clock)
    : http_(std::move(http)), options_(std::move(options)), clock_(clock) {}

absl::Status VaultKvClient::CheckPath(const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("vault path: is required");
  if (path.size() > kMaxPathBytes) {
    return absl::InvalidArgumentError(absl::StrCat("vault path: is longer than ", kMaxPathBytes, " bytes"));
  }
  for (unsigned char c : path) {
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError("vault path: must not contain control characters");
    }
  }
  for (absl::string_view segment : absl::StrSplit(path, '/')) {
    if (segment.empty() || segment == "." || segment == "..") {
      return absl::InvalidArgumentError(absl::StrCat(
          "vault path \"", path, "\": must be segments separated by single \"/\", without \".\" or \"..\" and "
          "without a leading or trailing \"/\""));
    }
  }
  return absl::OkStatus();
}

absl::Status VaultKvClient::CheckField(const std::string& field) {
  if (field.empty()) return absl::InvalidArgumentError("vault field: is required");
  if (field.size() > kMaxFieldBytes) {
    return absl::InvalidArgumentError(absl::StrCat("vault field: is longer than ", kMaxFieldBytes, " bytes"));
  }
  for (unsigned char c : field) {
    if (c < 0x20 || c == 0x7f) return absl::InvalidArgumentError("vault field: must not contain control characters");
  }
  return absl::OkStatus();
}

int64_t VaultKvClient::logins() const {
  MutexLock l(&mu_);
  return logins_;
}

int64_t VaultKvClient::requests() const {
  MutexLock l(&mu_);
  return requests_;
}

absl::StatusOr<VaultResponse> VaultKvClient::Send(const std::string& method, const std::string& api_path,
                                                  const std::string& token, const std::string& body) {
  {
    MutexLock l(&mu_);
    ++requests_;
  }
  return http_->Send(method, api_path, token, body);
}

absl::StatusOr<std::string> VaultKvClient::LoginLocked(absl::Duration* lease) {
  *lease = absl::ZeroDuration();
  const VaultAuth& auth = options_.auth;
  if (auth.kind == VaultAuth::Kind::kToken) return ReadCredentialFile(auth.token_file, "--vault-token-file");

  ASSIGN_OR_RETURN(std::string role_id, ReadCredentialFile(auth.role_id_file, "--vault-approle-role-id-file"));
  ASSIGN_OR_RETURN(std::string secret_id, ReadCredentialFile(auth.secret_id_file, "--vault-approle-secret-id-file"));
  nlohmann::json request = {{"role_id", std::move(role_id)}, {"secret_id", std::move(secret_id)}};
  absl::StatusOr<std::string> body = DumpJson(request);
  if (!body.ok()) return absl::FailedPreconditionError("vault: the AppRole role_id or secret_id is not valid UTF-8");
  const std::string where = absl::StrCat("auth/", auth.approle_mount, "/login");
  ASSIGN_OR_RETURN(VaultResponse r, Send("POST", absl::StrCat("/v1/", EncodePath(where)), "", *body));
  if (r.status == 200) {
    absl::StatusOr<VaultLogin> login = ParseLogin(r.body);
    if (!login.ok()) return absl::InternalError(absl::StrCat(login.status().message(), " (", where, ")"));
    *lease = login->lease;
    return std::move(login->token);
  }
  std::string message = absl::StrCat("vault: AppRole login at ", where, " answered HTTP ", r.status);
  if (r.status == 400 || r.status == 403) {
    return absl::PermissionDeniedError(
        WithErrors(absl::StrCat("vault: AppRole login at ", where, " was refused (role_id or secret_id wrong, "
                                                                  "expired or revoked)"),
                   r));
  }
  if (Retryable(r.status)) return absl::UnavailableError(WithErrors(message, r));
  return absl::FailedPreconditionError(WithErrors(message, r));
}

absl::StatusOr<VaultKvClient::Token> VaultKvClient::CurrentToken(int64_t stale_generation) {
  auto usable = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return generation_ != 0 && generation_ != stale_generation && clock_->Now() < relogin_at_;
  };
  {
    MutexLock l(&mu_);
    if (usable()) return Token{token_, generation_};
  }
  MutexLock login(&login_mu_);
  {
    MutexLock l(&mu_);
    if (usable()) return Token{token_, generation_};  // another thread logged in meanwhile
  }
  absl::Duration lease;
  absl::StatusOr<std::string> token = LoginLocked(&lease);
  MutexLock l(&mu_);
  if (!token.ok()) {
    // A token only due for replacement is still good until its lease ends.
    const bool refused = generation_ == stale_generation;
    if (!refused && generation_ != 0 && absl::IsUnavailable(token.status()) && clock_->Now() < expires_at_) {
      return Token{token_, generation_};
    }
    return token.status();
  }
  token_ = std::move(*token);
  ++generation_;
  ++logins_;
  const absl::Time now = clock_->Now();
  relogin_at_ = lease > absl::ZeroDuration() ? now + lease * options_.relogin_at_lease_fraction : absl::InfiniteFuture();
  expires_at_ = lease > absl::ZeroDuration() ? now + lease : absl::InfiniteFuture();
  return Token{token_, generation_};
}

absl::StatusOr<std::string> VaultKvClient::Read(const std::string& path, const std::string& field) {
  RETURN_IF_ERROR(CheckPath(path));
  RETURN_IF_ERROR(CheckField(field));
  const std::string where = absl::StrCat(options_.kv_mount, "/", path);
  const std::string key = absl::StrCat(path, std::string(1, '\0'), field);
  if (options_.cache_ttl > absl::ZeroDuration()) {
    MutexLock l(&mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      if (clock_->Now() < it->second.expires) return it->second.value;
      cache_.erase(it);
    }
  }
  const std::string api_path = absl::StrCat("/v1/", EncodePath(options_.kv_mount), "/data/", EncodePath(path));
  ASSIGN_OR_RETURN(Token token, CurrentToken(-1));
  ASSIGN_OR_RETURN(VaultResponse r, Send("GET", api_path, token.value, ""));
  if (r.status == 403) {
    // The token may have expired or been revoked: log in again, once.
    ASSIGN_OR_RETURN(token, CurrentToken(token.generation));
    ASSIGN_OR_RETURN(r, Send("GET", api_path, token.value, ""));
  }
  if (r.status == 404) {
    if (IsDeletedVersion(r.body)) {
      return absl::NotFoundError(
          absl::StrCat("vault: secret \"", where, "\" has no current version (deleted or destroyed)"));
    }
    return absl::NotFoundError(WithErrors(absl::StrCat("vault: no secret at \"", where, "\""), r));
  }
  if (r.status == 403) {
    return absl::PermissionDeniedError(WithErrors(
        absl::StrCat("vault: reading secret \"", where, "\" (field \"", field,
                     "\") was refused with a fresh login: the token's policies do not allow it"),
        r));
  }
  if (r.status != 200) {
    std::string message =
        absl::StrCat("vault: reading secret \"", where, "\" (field \"", field, "\") answered HTTP ", r.status);
    if (Retryable(r.status)) return absl::UnavailableError(WithErrors(message, r));
    return absl::FailedPreconditionError(WithErrors(message, r));
  }
  ASSIGN_OR_RETURN(std::string value, KvV2Field(r.body, where, field));
  if (options_.cache_ttl > absl::ZeroDuration()) {
    MutexLock l(&mu_);
    const absl::Time now = clock_->Now();
    if (cache_.size() >= kMaxCacheEntries) {
      absl::erase_if(cache_, [now](const auto& e) { return e.second.expires <= now; });
      if (cache_.size() >= kMaxCacheEntries) cache_.clear();
    }
    cache_[key] = Cached{value, now + options_.cache_ttl};
  }
  return value;
}

}  // namespace ferry::secrets
