#include "services/notifier/delivery_sender.h"

#include <google/protobuf/util/json_util.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/sha256.h"
#include "common/json/json.h"
#include "common/status/status_macros.h"
#include "common/text/utf8.h"

namespace ferry::notifier {
namespace {

std::string Str(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The secret reference under `key`, or nullopt when there is none.
absl::StatusOr<std::optional<v1::SecretRef>> RefOf(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  v1::SecretRef ref;
  if (!google::protobuf::util::JsonStringToMessage(DumpJsonLossy(*it), &ref).ok()) {
    return absl::FailedPreconditionError(absl::StrCat(key, ": not a secret reference"));
  }
  return ref;
}

// scheme://host[:port] of a URL, for messages.
std::string HostPart(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return "(not a URL)";
  size_t end = url.find_first_of("/?#", scheme + 3);
  return url.substr(0, end);
}

absl::Status CheckScheme(const std::string& url) {
  if (absl::StartsWith(url, "https://")) return absl::OkStatus();
  if (absl::StartsWith(url, "http://")) {
    std::string host = HostPart(url).substr(7);
    if (size_t colon = host.rfind(':'); colon != std::string::npos && host.find(']') == std::string::npos) {
      host = host.substr(0, colon);
    } else if (size_t close = host.find(']'); close != std::string::npos) {
      host = host.substr(0, close + 1);
    }
    host = absl::AsciiStrToLower(host);
    if (host == "localhost" || absl::StartsWith(host, "127.") || host == "[::1]") return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat("refusing plain http:// to ", HostPart(url), ": https only (http only to a loopback host)"));
  }
  return absl::FailedPreconditionError("the URL is not https://");
}

absl::Status FromHttp(const std::string& what, const std::string& url, const HttpResponse& r) {
  if (r.status >= 200 && r.status < 300) return absl::OkStatus();
  std::string snippet = text::SanitizeUtf8(r.body.substr(0, 200));
  for (char& c : snippet) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  std::string msg = absl::StrCat(what, " at ", HostPart(url), " answered HTTP ", r.status,
                                 snippet.empty() ? "" : ": " + snippet);
  const bool retryable = r.status >= 500 || r.status == 408 || r.status == 409 || r.status == 425 ||
                         r.status == 429 || r.status < 200;
  return retryable ? absl::UnavailableError(msg) : absl::FailedPreconditionError(msg);
}

}  // namespace

std::string HmacSha256Hex(const std::string& key, const std::string& body) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(body.data()),
       body.size(), out, &len);
  return HexEncode(std::string(reinterpret_cast<const char*>(out), len));
}

std::string DeliverySender::KindOf(const std::string& request_json) {
  absl::StatusOr<nlohmann::json> j = ParseJson(request_json);
  if (!j.ok() || !j->is_object()) return "unknown";
  std::string kind = Str(*j, "kind");
  return kind.empty() ? "unknown" : kind;
}

absl::Status DeliverySender::Send(const std::string& request_json) {
  absl::StatusOr<nlohmann::json> parsed = ParseJson(request_json);
  if (!parsed.ok() || !parsed->is_object()) return absl::FailedPreconditionError("unreadable delivery request");
  const nlohmann::json& req = *parsed;
  const std::string kind = Str(req, "kind");
  // A subscription an application declares in Git reads only the secrets
  // kept for those: whoever can push must not name the Git host tokens.
  SecretReader refused = [](const v1::SecretRef&, const std::string& field) -> absl::StatusOr<std::string> {
    return absl::FailedPreconditionError(absl::StrCat(
        field, ": secret references of subscriptions declared in ferry.yaml are refused: the notifier was started "
               "without --declared-secrets-dir or --declared-secret-env-prefix"));
  };
  const SecretReader& read =
      Str(req, "secrets") == "declared" ? (declared_secrets_ ? declared_secrets_ : refused) : secrets_;
  if (kind == "email") {
    MailMessage mail;
    mail.smtp_url = Str(req, "smtp_url");
    mail.username = Str(req, "smtp_username");
    ASSIGN_OR_RETURN(std::optional<v1::SecretRef> password, RefOf(req, "smtp_password"));
    if (password.has_value()) {
      absl::StatusOr<std::string> p = read(*password, "sink.smtp_password");
      if (!p.ok()) return absl::IsUnavailable(p.status()) ? p.status() : absl::FailedPreconditionError(p.status().message());
      mail.password = *p;
    }
    mail.from = Str(req, "from");
    if (auto it = req.find("to"); it != req.end() && it->is_array()) {
      for (const auto& t : *it) {
        if (t.is_string()) mail.to.push_back(t.get<std::string>());
      }
    }
    mail.message = Str(req, "message");
    return mail_.Send(mail);
  }
  std::vector<std::pair<std::string, std::string>> headers = {{"Content-Type", "application/json"},
                                                              {"User-Agent", "ferry-notifier"}};
  const std::string body = Str(req, "body");
  std::string url = Str(req, "url");
  if (kind == "commit_status") {
    ASSIGN_OR_RETURN(std::optional<v1::SecretRef> token_ref, RefOf(req, "token"));
    if (!token_ref.has_value()) return absl::FailedPreconditionError("the repository's git_host has no token");
    absl::StatusOr<std::string> token = read(*token_ref, "git_host.token");
    if (!token.ok()) {
      return absl::IsUnavailable(token.status()) ? token.status() : absl::FailedPreconditionError(token.status().message());
    }
    if (token->find_first_of("\r\n") != std::string::npos) {
      return absl::FailedPreconditionError("git_host.token: holds a line break");
    }
    const std::string host_kind = Str(req, "host_kind");
    if (host_kind == "github") {
      headers.push_back({"Accept", "application/vnd.github+json"});
      headers.push_back({"X-GitHub-Api-Version", "2022-11-28"});
      headers.push_back({"Authorization", "Bearer " + *token});
    } else if (host_kind == "gitlab") {
      headers.push_back({"PRIVATE-TOKEN", *token});
    } else if (host_kind == "gitea") {
      headers.push_back({"Authorization", "token " + *token});
    } else {
      return absl::FailedPreconditionError("unknown git host kind");
    }
    RETURN_IF_ERROR(CheckScheme(url));
    ASSIGN_OR_RETURN(HttpResponse r, http_.Post(url, headers, body));
    return FromHttp(host_kind + " status API", url, r);
  }
  if (kind != "webhook" && kind != "slack" && kind != "teams") {
    return absl::FailedPreconditionError(absl::StrCat("unknown delivery kind \"", kind, "\""));
  }
  ASSIGN_OR_RETURN(std::optional<v1::SecretRef> url_ref, RefOf(req, "url_secret"));
  if (url_ref.has_value()) {
    absl::StatusOr<std::string> u = read(*url_ref, "sink.url_secret");
    if (!u.ok()) return absl::IsUnavailable(u.status()) ? u.status() : absl::FailedPreconditionError(u.status().message());
    url = std::string(absl::StripAsciiWhitespace(*u));
  }
  RETURN_IF_ERROR(CheckScheme(url));
  if (auto it = req.find("headers"); it != req.end() && it->is_object()) {
    for (const auto& [name, value] : it->items()) {
      if (value.is_string()) headers.push_back({name, value.get<std::string>()});
    }
  }
  ASSIGN_OR_RETURN(std::optional<v1::SecretRef> hmac_ref, RefOf(req, "hmac_secret"));
  if (hmac_ref.has_value()) {
    absl::StatusOr<std::string> key = read(*hmac_ref, "sink.hmac_secret");
    if (!key.ok()) return absl::IsUnavailable(key.status()) ? key.status() : absl::FailedPreconditionError(key.status().message());
    headers.push_back({"X-Ferry-Signature", "sha256=" + HmacSha256Hex(*key, body)});
  }
  ASSIGN_OR_RETURN(HttpResponse r, http_.Post(url, headers, body));
  return FromHttp(kind, url, r);
}

}  // namespace ferry::notifier
