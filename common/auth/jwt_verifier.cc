#include "common/auth/jwt_verifier.h"

#include <cjose/cjose.h>
#include <curl/curl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <optional>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/http/curl_support.h"
#include "common/json/json.h"
#include "common/logging/logger.h"
#include "common/status/status_macros.h"

namespace ferry::auth {
namespace {

using nlohmann::json;
using http::CurlFree;
using http::CurlRelease;
using http::CurlUrlRelease;
using http::InitCurlOnce;
using http::IsLoopbackHost;

constexpr size_t kMaxUserNameBytes = 256;
constexpr size_t kMaxShownBytes = 100;
constexpr int kMaxJsonDepth = 20;

// A value taken from a token, for a refusal: quoted, escaped, cut short.
std::string Shown(std::string_view s) {
  std::string cut(s.substr(0, kMaxShownBytes));
  std::string out = "\"" + absl::CHexEscape(cut) + "\"";
  if (s.size() > kMaxShownBytes) out += "...";
  return out;
}

absl::Status Refuse(std::string_view why) { return absl::UnauthenticatedError(std::string(why)); }

bool IsBase64UrlChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

bool IsBase64Url(std::string_view s) {
  for (char c : s) {
    if (!IsBase64UrlChar(c)) return false;
  }
  return s.size() % 4 != 1;  // no base64 text has that length
}

bool HasControlCharacter(std::string_view s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return true;
  }
  return false;
}

// What an accepted alg needs of its key.
struct AlgSpec {
  const char* name;
  cjose_jwk_kty_t kty;
  cjose_jwk_ec_curve curve;  // EC only
};
constexpr AlgSpec kAlgs[] = {
    {"RS256", CJOSE_JWK_KTY_RSA, CJOSE_JWK_EC_INVALID}, {"RS384", CJOSE_JWK_KTY_RSA, CJOSE_JWK_EC_INVALID},
    {"RS512", CJOSE_JWK_KTY_RSA, CJOSE_JWK_EC_INVALID}, {"PS256", CJOSE_JWK_KTY_RSA, CJOSE_JWK_EC_INVALID},
    {"PS384", CJOSE_JWK_KTY_RSA, CJOSE_JWK_EC_INVALID}, {"PS512", CJOSE_JWK_KTY_RSA, CJOSE_JWK_EC_INVALID},
    {"ES256", CJOSE_JWK_KTY_EC, CJOSE_JWK_EC_P_256},    {"ES384", CJOSE_JWK_KTY_EC, CJOSE_JWK_EC_P_384},
    {"ES512", CJOSE_JWK_KTY_EC, CJOSE_JWK_EC_P_521},
};
constexpr size_t kMinRsaBits = 2048;

const AlgSpec* FindAlg(const std::string& alg) {
  for (const AlgSpec& spec : kAlgs) {
    if (alg == spec.name) return &spec;
  }
  return nullptr;
}

struct JwkRelease {
  void operator()(cjose_jwk_t* jwk) const { cjose_jwk_release(jwk); }
};
struct JwsRelease {
  void operator()(cjose_jws_t* jws) const { cjose_jws_release(jws); }
};

// One part of a token, base64url-decoded (by cjose) and parsed.
struct DecodedPart {
  std::string bytes;
  json value;
};

absl::StatusOr<DecodedPart> DecodePart(std::string_view b64, const char* what, size_t max_bytes) {
  cjose_err err{};
  uint8_t* raw = nullptr;
  size_t raw_len = 0;
  if (!cjose_base64url_decode(b64.data(), b64.size(), &raw, &raw_len, &err) || raw == nullptr) {
    return Refuse(absl::StrCat("JWT is malformed: its ", what, " is not base64url"));
  }
  DecodedPart part;
  part.bytes.assign(reinterpret_cast<const char*>(raw), raw_len);
  cjose_get_dealloc()(raw);
  auto parsed = ParseJson(part.bytes, JsonLimits{.max_depth = kMaxJsonDepth, .max_bytes = max_bytes});
  if (!parsed.ok() || !parsed->is_object()) {
    return Refuse(absl::StrCat("JWT is malformed: its ", what, " is not a JSON object"));
  }
  part.value = *std::move(parsed);
  return part;
}

// A string member, "" when absent; an error naming it when not a string.
absl::StatusOr<std::string> OptionalString(const json& object, const std::string& key, const char* where) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::string();
  if (!it->is_string()) return Refuse(absl::StrCat("JWT ", where, " ", key, " is not a string"));
  return it->get_ref<const std::string&>();
}

// A NumericDate claim (seconds since the epoch, maybe fractional).
absl::StatusOr<std::optional<absl::Time>> NumericDate(const json& claims, const std::string& key) {
  auto it = claims.find(key);
  if (it == claims.end() || it->is_null()) return std::optional<absl::Time>();
  if (!it->is_number()) return Refuse(absl::StrCat("JWT claim ", key, " is not a number"));
  const double seconds = it->get<double>();
  if (!std::isfinite(seconds)) return Refuse(absl::StrCat("JWT claim ", key, " is not a finite number"));
  return std::optional<absl::Time>(absl::UnixEpoch() + absl::Seconds(seconds));
}

}  // namespace

// A key of an issuer's JWKS that can verify signatures.
struct JwtKey {
  std::string kid;
  std::string alg;  // the JWK's own "alg", "" when it names none
  cjose_jwk_kty_t kty;
  cjose_jwk_ec_curve curve = CJOSE_JWK_EC_INVALID;
  size_t bits = 0;
  std::unique_ptr<cjose_jwk_t, JwkRelease> jwk;
};

// An issuer's keys as one fetch or read found them. Immutable; verifications
// read it without a lock (cjose only reads a key to verify).
struct JwtVerifier::KeySet {
  std::vector<JwtKey> keys;

  bool HasKid(const std::string& kid) const {
    for (const JwtKey& key : keys) {
      if (key.kid == kid) return true;
    }
    return false;
  }
};

namespace {

const char* KtyName(cjose_jwk_kty_t kty) {
  switch (kty) {
    case CJOSE_JWK_KTY_RSA:
      return "RSA";
    case CJOSE_JWK_KTY_EC:
      return "EC";
    case CJOSE_JWK_KTY_OCT:
      return "oct";
  }
  return "unknown";
}

// The signing keys of a JWKS document ({"keys": [...]}). Symmetric keys
// ("oct"), keys for another use and keys cjose cannot read are left out; a
// document with no key left is an error.
absl::StatusOr<std::shared_ptr<const JwtVerifier::KeySet>> ParseJwks(const std::string& text, size_t max_bytes) {
  auto parsed = ParseJson(text, JsonLimits{.max_depth = kMaxJsonDepth, .max_bytes = max_bytes});
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(parsed.status().code() == absl::StatusCode::kResourceExhausted
                                          ? std::string(parsed.status().message())
                                          : "not valid JSON");
  }
  auto keys_it = parsed->is_object() ? parsed->find("keys") : parsed->end();
  if (!parsed->is_object() || keys_it == parsed->end() || !keys_it->is_array()) {
    return absl::InvalidArgumentError("not a JWKS (an object with a \"keys\" array)");
  }
  auto set = std::make_shared<JwtVerifier::KeySet>();
  for (const json& entry : *keys_it) {
    if (!entry.is_object()) continue;
    auto kty = entry.find("kty");
    if (kty == entry.end() || !kty->is_string()) continue;
    const std::string& kty_name = kty->get_ref<const std::string&>();
    if (kty_name != "RSA" && kty_name != "EC") continue;  // never a symmetric key
    auto use = entry.find("use");
    if (use != entry.end() && !(use->is_string() && use->get_ref<const std::string&>() == "sig")) continue;
    auto kid = OptionalString(entry, "kid", "key");
    auto alg = OptionalString(entry, "alg", "key");
    if (!kid.ok() || !alg.ok()) continue;
    auto text_of_key = DumpJson(entry);
    if (!text_of_key.ok()) continue;
    cjose_err err{};
    JwtKey key;
    key.jwk.reset(cjose_jwk_import(text_of_key->data(), text_of_key->size(), &err));
    if (!key.jwk) continue;
    key.kty = cjose_jwk_get_kty(key.jwk.get(), &err);
    if (key.kty != CJOSE_JWK_KTY_RSA && key.kty != CJOSE_JWK_KTY_EC) continue;
    if (key.kty == CJOSE_JWK_KTY_EC) key.curve = cjose_jwk_EC_get_curve(key.jwk.get(), &err);
    key.bits = cjose_jwk_get_keysize(key.jwk.get(), &err);
    key.kid = *std::move(kid);
    key.alg = *std::move(alg);
    set->keys.push_back(std::move(key));
  }
  if (set->keys.empty()) return absl::InvalidArgumentError("the JWKS has no usable signing key (RSA or EC)");
  return std::shared_ptr<const JwtVerifier::KeySet>(std::move(set));
}

// The key `kid` names ("": the only key) and that fits `alg`.
absl::StatusOr<const JwtKey*> ChooseKey(const JwtVerifier::KeySet& set, const std::string& kid, const AlgSpec& alg,
                                        const std::string& issuer) {
  const JwtKey* key = nullptr;
  if (kid.empty()) {
    if (set.keys.size() != 1) {
      return Refuse(absl::StrCat("JWT has no kid and the JWKS of issuer ", Shown(issuer), " has ", set.keys.size(),
                                 " keys"));
    }
    key = &set.keys[0];
  } else {
    for (const JwtKey& candidate : set.keys) {
      if (candidate.kid != kid) continue;
      if (key == nullptr || (key->kty != alg.kty && candidate.kty == alg.kty)) key = &candidate;
    }
    if (key == nullptr) {
      return Refuse(absl::StrCat("JWT key id ", Shown(kid), " is not in the JWKS of issuer ", Shown(issuer)));
    }
  }
  const std::string named = kid.empty() ? std::string("the JWKS's only key") : "key " + Shown(kid);
  if (key->kty != alg.kty) {
    return Refuse(absl::StrCat("JWT algorithm ", alg.name, " cannot use ", named, " (kty ", KtyName(key->kty), ")"));
  }
  if (alg.kty == CJOSE_JWK_KTY_EC && key->curve != alg.curve) {
    return Refuse(absl::StrCat("JWT algorithm ", alg.name, " cannot use ", named, " (another curve)"));
  }
  if (alg.kty == CJOSE_JWK_KTY_RSA && key->bits < kMinRsaBits) {
    return Refuse(absl::StrCat("JWT ", named, " is an RSA key of ", key->bits, " bits; at least ", kMinRsaBits,
                               " are needed"));
  }
  if (!key->alg.empty() && key->alg != alg.name) {
    return Refuse(absl::StrCat("JWT algorithm ", alg.name, " cannot use ", named, " (its alg is ", Shown(key->alg),
                               ")"));
  }
  return key;
}

// Identifies a version of a file: a change of any field is a new version.
struct FileId {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  int64_t mtime_sec = 0;
  int64_t mtime_nsec = 0;
  bool operator==(const FileId&) const = default;
};

absl::StatusOr<std::string> ReadFileCapped(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::UnavailableError(absl::StrCat("cannot open: ", std::strerror(errno)));
  std::string text(max_bytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return absl::UnavailableError("cannot read");
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > max_bytes) return absl::InvalidArgumentError(absl::StrCat("larger than ", max_bytes, " bytes"));
  return text;
}


// Whether the URL may be fetched: https anywhere, http only to loopback.
// Returns whether it is loopback http (no proxy then).
absl::StatusOr<bool> CheckJwksUrl(const std::string& url) {
  std::unique_ptr<CURLU, CurlUrlRelease> u(curl_url());
  if (!u) return absl::ResourceExhaustedError("out of memory");
  if (curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) {
    return absl::InvalidArgumentError("jwks_url is not a valid URL");
  }
  char* scheme_raw = nullptr;
  char* host_raw = nullptr;
  curl_url_get(u.get(), CURLUPART_SCHEME, &scheme_raw, 0);
  std::unique_ptr<char, CurlFree> scheme(scheme_raw);
  curl_url_get(u.get(), CURLUPART_HOST, &host_raw, 0);
  std::unique_ptr<char, CurlFree> host(host_raw);
  const std::string s = scheme ? absl::AsciiStrToLower(scheme.get()) : "";
  if (s == "https") return false;
  if (s == "http" && host && IsLoopbackHost(host.get())) return true;
  return absl::InvalidArgumentError("jwks_url must be https (http only to a loopback address)");
}

absl::StatusOr<std::string> FetchUrl(const std::string& url, const JwtVerifier::Options& options) {
  ASSIGN_OR_RETURN(const bool loopback_http, CheckJwksUrl(url));
  std::unique_ptr<CURL, CurlRelease> curl(curl_easy_init());
  if (!curl) return absl::ResourceExhaustedError("cannot start libcurl");
  http::BoundedBody body;
  body.cap = options.max_jwks_bytes;
  char error[CURL_ERROR_SIZE] = {0};
  const long timeout_ms = static_cast<long>(absl::ToInt64Milliseconds(options.fetch_timeout));
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options.max_jwks_bytes));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &http::AppendBounded);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "ferry-jwt-verifier");
  if (loopback_http) curl_easy_setopt(c, CURLOPT_PROXY, "");  // never through a proxy from the environment
  const CURLcode rc = curl_easy_perform(c);
  if (body.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
    return absl::InvalidArgumentError(absl::StrCat("larger than ", options.max_jwks_bytes, " bytes"));
  }
  if (rc != CURLE_OK) return absl::UnavailableError(error[0] != '\0' ? error : curl_easy_strerror(rc));
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  if (code != 200) return absl::UnavailableError(absl::StrCat("HTTP status ", code));
  return std::move(body.data);
}

}  // namespace

// The cached keys of one issuer, and when and how they were last fetched.
struct JwtVerifier::IssuerKeys {
  std::string file;  // the JWKS source, fixed for the entry's life
  std::string url;

  Mutex fetch_mu;  // held by the one thread fetching or reading the JWKS
  Mutex mu;
  std::shared_ptr<const KeySet> keys ABSL_GUARDED_BY(mu);
  absl::Time fetched_at ABSL_GUARDED_BY(mu) = absl::InfinitePast();    // of `keys`
  absl::Time last_attempt ABSL_GUARDED_BY(mu) = absl::InfinitePast();  // successful or not
  std::string last_error ABSL_GUARDED_BY(mu);                          // "" after a success
  std::optional<FileId> file_id ABSL_GUARDED_BY(mu);                   // of the file last read
  bool fetching ABSL_GUARDED_BY(mu) = false;
};

namespace {

enum class Need { kNothing, kRefresh, kFetch };

// What a fetch of a URL would bring, given the cache and the token's kid.
Need Decide(const JwtVerifier::IssuerKeys& e, const std::string& kid, absl::Time now,
            const JwtVerifier::Options& options) ABSL_EXCLUSIVE_LOCKS_REQUIRED(e.mu) {
  if (!e.keys) return now - e.last_attempt >= options.retry_without_keys ? Need::kFetch : Need::kNothing;
  if (!kid.empty() && !e.keys->HasKid(kid)) {
    return now - e.last_attempt >= options.refetch_interval ? Need::kFetch : Need::kNothing;
  }
  if (now - e.fetched_at >= options.max_key_age && now - e.last_attempt >= options.refetch_interval) {
    return Need::kRefresh;
  }
  return Need::kNothing;
}

absl::Status NoKeys(const std::string& issuer, const std::string& error) {
  return absl::UnavailableError(
      absl::StrCat("the JWKS of issuer ", Shown(issuer), " is not available: ", error.empty() ? "not fetched" : error));
}

}  // namespace

JwtVerifier::JwtVerifier(std::function<std::vector<OidcIssuer>()> issuers, const Clock* clock)
    : JwtVerifier(std::move(issuers), clock, Options{}) {}

JwtVerifier::JwtVerifier(std::function<std::vector<OidcIssuer>()> issuers, const Clock* clock, Options options)
    : issuers_(std::move(issuers)), clock_(clock), options_(options) {
  InitCurlOnce();
}

JwtVerifier::~JwtVerifier() = default;

bool JwtVerifier::Recognizes(std::string_view token) const {
  if (token.substr(0, 6) == "ferry_") return false;
  const size_t first = token.find('.');
  if (first == std::string_view::npos || first == 0) return false;
  const size_t second = token.find('.', first + 1);
  if (second == std::string_view::npos || second == first + 1) return false;
  for (size_t i = second + 1; i < token.size(); ++i) {
    if (!IsBase64UrlChar(token[i])) return false;
  }
  for (size_t i = 0; i < second; ++i) {
    if (i != first && !IsBase64UrlChar(token[i])) return false;
  }
  return true;
}

std::shared_ptr<JwtVerifier::IssuerKeys> JwtVerifier::EntryFor(const OidcIssuer& issuer) {
  MutexLock lock(&mu_);
  std::shared_ptr<IssuerKeys>& entry = entries_[issuer.issuer];
  if (!entry || entry->file != issuer.jwks_file || entry->url != issuer.jwks_url) {
    entry = std::make_shared<IssuerKeys>();
    entry->file = issuer.jwks_file;
    entry->url = issuer.jwks_url;
  }
  return entry;
}

absl::StatusOr<std::shared_ptr<const JwtVerifier::KeySet>> JwtVerifier::KeysFor(const OidcIssuer& issuer,
                                                                                  const std::string& kid) {
  std::shared_ptr<IssuerKeys> entry = EntryFor(issuer);  // kept alive while in use
  if (!entry->file.empty()) return FileKeys(issuer, *entry);
  if (!entry->url.empty()) return UrlKeys(issuer, *entry, kid);
  return NoKeys(issuer.issuer, "the issuer has neither jwks_file nor jwks_url");
}

absl::StatusOr<std::shared_ptr<const JwtVerifier::KeySet>> JwtVerifier::FileKeys(const OidcIssuer& issuer,
                                                                                   IssuerKeys& e) {
  // A file is cheap to look at: stat it every time, read it when it changed.
  struct stat st {};
  std::optional<FileId> id;
  std::string stat_error;
  if (stat(e.file.c_str(), &st) == 0) {
    id = FileId{st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec};
  } else {
    stat_error = absl::StrCat("JWKS file: ", std::strerror(errno));
  }
  {
    MutexLock lock(&e.mu);
    if (id && e.file_id == id) {
      if (e.keys) return e.keys;
      return NoKeys(issuer.issuer, e.last_error);
    }
  }
  MutexLock fetch(&e.fetch_mu);
  {
    MutexLock lock(&e.mu);
    if (id && e.file_id == id) {  // read by another thread meanwhile
      if (e.keys) return e.keys;
      return NoKeys(issuer.issuer, e.last_error);
    }
  }
  absl::StatusOr<std::shared_ptr<const KeySet>> loaded = absl::UnavailableError(stat_error);
  if (id) {
    auto text = ReadFileCapped(e.file, options_.max_jwks_bytes);
    loaded = text.ok() ? ParseJwks(*text, options_.max_jwks_bytes) : text.status();
    if (!loaded.ok()) {
      loaded = absl::Status(loaded.status().code(), absl::StrCat("JWKS file: ", loaded.status().message()));
    }
  }
  MutexLock lock(&e.mu);
  e.last_attempt = clock_->Now();
  e.file_id = id;  // a file that failed is not read again until it changes
  if (loaded.ok()) {
    e.keys = *std::move(loaded);
    e.fetched_at = e.last_attempt;
    e.last_error.clear();
    return e.keys;
  }
  const bool new_error = e.last_error != loaded.status().message();
  e.last_error = std::string(loaded.status().message());
  if (e.keys) {
    if (new_error) {
      logging::Warn("JWKS file unusable; the keys read before stay in use",
                    {{"issuer", issuer.issuer}, {"file", e.file}, {"error", e.last_error}});
    }
    return e.keys;
  }
  return NoKeys(issuer.issuer, e.last_error);
}

absl::StatusOr<std::shared_ptr<const JwtVerifier::KeySet>> JwtVerifier::UrlKeys(const OidcIssuer& issuer,
                                                                                  IssuerKeys& e,
                                                                                  const std::string& kid) {
  {
    MutexLock lock(&e.mu);
    const Need n = Decide(e, kid, clock_->Now(), options_);
    // A refresh of keys at hand never makes a verification wait.
    if (n == Need::kNothing || (n == Need::kRefresh && e.fetching)) {
      if (e.keys) return e.keys;
      return NoKeys(issuer.issuer, e.last_error);
    }
  }
  MutexLock fetch(&e.fetch_mu);
  {
    MutexLock lock(&e.mu);
    if (Decide(e, kid, clock_->Now(), options_) == Need::kNothing) {  // fetched by another thread meanwhile
      if (e.keys) return e.keys;
      return NoKeys(issuer.issuer, e.last_error);
    }
    e.fetching = true;
  }
  absl::Cleanup done = [&e] {
    MutexLock lock(&e.mu);
    e.fetching = false;
  };
  auto text = FetchUrl(e.url, options_);
  auto loaded = text.ok() ? ParseJwks(*text, options_.max_jwks_bytes) : text.status();
  MutexLock lock(&e.mu);
  e.last_attempt = clock_->Now();
  if (loaded.ok()) {
    e.keys = *std::move(loaded);
    e.fetched_at = e.last_attempt;
    e.last_error.clear();
    return e.keys;
  }
  e.last_error = absl::StrCat("JWKS URL: ", loaded.status().message());
  if (e.keys) {
    logging::Warn("JWKS refresh failed; the cached keys stay in use",
                  {{"issuer", issuer.issuer}, {"error", e.last_error}});
    return e.keys;
  }
  return NoKeys(issuer.issuer, e.last_error);
}

absl::StatusOr<Principal> JwtVerifier::Verify(std::string_view token) {
  if (token.size() > options_.max_token_bytes) {
    return Refuse(absl::StrCat("JWT is larger than ", options_.max_token_bytes / 1024, " KiB"));
  }
  const size_t first = token.find('.');
  const size_t second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
    return Refuse("JWT is malformed: not three dot-separated parts");
  }
  const std::string_view header_b64 = token.substr(0, first);
  const std::string_view payload_b64 = token.substr(first + 1, second - first - 1);
  const std::string_view signature_b64 = token.substr(second + 1);
  if (!IsBase64Url(header_b64) || !IsBase64Url(payload_b64) || !IsBase64Url(signature_b64)) {
    return Refuse("JWT is malformed: a part is not base64url");
  }
  ASSIGN_OR_RETURN(DecodedPart header, DecodePart(header_b64, "header", options_.max_token_bytes));
  ASSIGN_OR_RETURN(DecodedPart payload, DecodePart(payload_b64, "payload", options_.max_token_bytes));
  const json& claims = payload.value;

  // The issuer first: nothing else is worth checking for a stranger's token.
  ASSIGN_OR_RETURN(const std::string iss, OptionalString(claims, "iss", "claim"));
  if (iss.empty()) return Refuse("JWT has no iss claim");
  const std::vector<OidcIssuer> issuers = issuers_ ? issuers_() : std::vector<OidcIssuer>{};
  const OidcIssuer* issuer = nullptr;
  for (const OidcIssuer& candidate : issuers) {
    if (candidate.issuer == iss) {
      issuer = &candidate;
      break;
    }
  }
  if (issuer == nullptr) return Refuse(absl::StrCat("JWT issuer ", Shown(iss), " is not trusted"));

  ASSIGN_OR_RETURN(const std::string alg, OptionalString(header.value, "alg", "header"));
  if (alg.empty()) return Refuse("JWT header has no alg");
  const AlgSpec* spec = FindAlg(alg);
  if (spec == nullptr) {
    if (absl::AsciiStrToLower(alg) == "none") return Refuse("JWT algorithm none is refused: the token is unsigned");
    if (alg.size() >= 2 && absl::AsciiStrToUpper(alg.substr(0, 2)) == "HS") {
      return Refuse(absl::StrCat("JWT algorithm ", Shown(alg),
                                 " is refused: only public-key signatures (RS*, PS*, ES*) are accepted"));
    }
    return Refuse(absl::StrCat("JWT algorithm ", Shown(alg), " is not accepted (RS256/384/512, PS256/384/512, ",
                               "ES256/384/512)"));
  }
  if (header.value.contains("crit")) return Refuse("JWT header has crit: no extension is supported");
  ASSIGN_OR_RETURN(const std::string kid, OptionalString(header.value, "kid", "header"));

  ASSIGN_OR_RETURN(std::shared_ptr<const KeySet> keys, KeysFor(*issuer, kid));
  ASSIGN_OR_RETURN(const JwtKey* key, ChooseKey(*keys, kid, *spec, issuer->issuer));

  // The signature, by cjose, over exactly the bytes checked below.
  cjose_err err{};
  std::unique_ptr<cjose_jws_t, JwsRelease> jws(cjose_jws_import(token.data(), token.size(), &err));
  if (!jws) return Refuse("JWT is malformed: not a JWS");
  cjose_header_t* protected_header = cjose_jws_get_protected(jws.get());
  const char* jws_alg = protected_header ? cjose_header_get(protected_header, CJOSE_HDR_ALG, &err) : nullptr;
  if (jws_alg == nullptr || alg != jws_alg) return Refuse("JWT is malformed: its header is ambiguous");
  if (!cjose_jws_verify(jws.get(), key->jwk.get(), &err)) return Refuse("JWT signature does not verify");
  uint8_t* plaintext = nullptr;
  size_t plaintext_len = 0;
  if (!cjose_jws_get_plaintext(jws.get(), &plaintext, &plaintext_len, &err) ||
      std::string_view(reinterpret_cast<const char*>(plaintext), plaintext_len) != payload.bytes) {
    return Refuse("JWT is malformed: its payload is ambiguous");
  }

  // Time, with the issuer's tolerance for clocks that differ.
  const absl::Time now = clock_->Now();
  const absl::Duration skew = issuer->clock_skew;
  ASSIGN_OR_RETURN(const std::optional<absl::Time> exp, NumericDate(claims, "exp"));
  ASSIGN_OR_RETURN(const std::optional<absl::Time> nbf, NumericDate(claims, "nbf"));
  ASSIGN_OR_RETURN(const std::optional<absl::Time> iat, NumericDate(claims, "iat"));
  if (!exp) return Refuse("JWT has no exp claim");
  if (now >= *exp + skew) return Refuse("JWT expired");
  if (nbf && now + skew < *nbf) return Refuse("JWT is not valid yet (nbf)");
  if (iat && *iat > now + skew) return Refuse("JWT was issued in the future (iat)");

  // Meant for Ferry.
  if (issuer->audience.empty()) {
    return Refuse(absl::StrCat("issuer ", Shown(issuer->issuer), " has no audience configured"));
  }
  auto aud = claims.find("aud");
  bool audience_matches = false;
  if (aud == claims.end() || aud->is_null()) return Refuse("JWT has no aud claim");
  if (aud->is_string()) {
    audience_matches = aud->get_ref<const std::string&>() == issuer->audience;
  } else if (aud->is_array()) {
    for (const json& a : *aud) {
      if (a.is_string() && a.get_ref<const std::string&>() == issuer->audience) audience_matches = true;
    }
  } else {
    return Refuse("JWT aud claim is neither a string nor an array");
  }
  if (!audience_matches) {
    return Refuse(absl::StrCat("JWT audience does not match (expected ", Shown(issuer->audience), ")"));
  }

  // Who it is.
  auto user = claims.find(issuer->username_claim);
  if (user == claims.end() || !user->is_string() || user->get_ref<const std::string&>().empty()) {
    return Refuse(absl::StrCat("JWT has no user name: claim ", Shown(issuer->username_claim),
                               " is missing or not a non-empty string"));
  }
  const std::string& username = user->get_ref<const std::string&>();
  if (username.size() > kMaxUserNameBytes || HasControlCharacter(username)) {
    return Refuse(absl::StrCat("JWT user name (claim ", Shown(issuer->username_claim), ") is longer than ",
                               kMaxUserNameBytes, " bytes or has control characters"));
  }
  std::vector<std::string> groups;
  auto groups_it = issuer->groups_claim.empty() ? claims.end() : claims.find(issuer->groups_claim);
  if (groups_it != claims.end() && !groups_it->is_null()) {
    const std::string bad_groups =
        absl::StrCat("JWT groups claim ", Shown(issuer->groups_claim), " is not a string or an array of strings");
    if (groups_it->is_string()) {
      groups.push_back(groups_it->get_ref<const std::string&>());
    } else if (groups_it->is_array()) {
      for (const json& g : *groups_it) {
        if (!g.is_string()) return Refuse(bad_groups);
        groups.push_back(g.get_ref<const std::string&>());
      }
    } else {
      return Refuse(bad_groups);
    }
    for (const std::string& g : groups) {
      if (g.empty() || g.size() > kMaxUserNameBytes || HasControlCharacter(g)) {
        return Refuse(absl::StrCat("JWT groups claim ", Shown(issuer->groups_claim), " has an empty or bad group"));
      }
    }
  }

  Principal principal;
  principal.kind = PrincipalKind::kUser;
  principal.id = username;
  principal.groups = std::move(groups);
  principal.method = "oidc:" + issuer->issuer;
  return principal;
}

}  // namespace ferry::auth
