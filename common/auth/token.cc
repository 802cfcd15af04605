#include "common/auth/token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/sha256.h"
#include "common/logging/logger.h"

namespace ferry::auth {
namespace {

constexpr size_t kMinKeyBytes = 32;
constexpr char kShape[] = "expected ferry_<12 lowercase hex characters>_<43 base64url characters>";

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

bool IsBase64Url(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; }

}  // namespace

absl::StatusOr<NewToken> GenerateToken() {
  unsigned char id[kTokenIdLength / 2];
  unsigned char secret[32];
  if (RAND_bytes(id, sizeof id) != 1 || RAND_bytes(secret, sizeof secret) != 1) {
    return absl::InternalError("cannot make an API token: the random generator failed");
  }
  NewToken out;
  out.id = HexEncode(absl::string_view(reinterpret_cast<const char*>(id), sizeof id));
  std::string encoded;
  absl::WebSafeBase64Escape(absl::string_view(reinterpret_cast<const char*>(secret), sizeof secret), &encoded);
  OPENSSL_cleanse(secret, sizeof secret);
  out.token = absl::StrCat(std::string(kTokenPrefix), out.id, "_", encoded);
  OPENSSL_cleanse(encoded.data(), encoded.size());
  return out;
}

bool HasTokenPrefix(std::string_view token) { return token.substr(0, kTokenPrefix.size()) == kTokenPrefix; }

bool IsTokenId(std::string_view id) {
  if (id.size() != kTokenIdLength) return false;
  for (char c : id) {
    if (!IsLowerHex(c)) return false;
  }
  return true;
}

absl::StatusOr<std::string> ParseTokenId(std::string_view token) {
  if (token.size() != kTokenLength || !HasTokenPrefix(token)) {
    return absl::InvalidArgumentError(absl::StrCat("malformed API token: ", kShape));
  }
  std::string_view id = token.substr(kTokenPrefix.size(), kTokenIdLength);
  std::string_view secret = token.substr(kTokenPrefix.size() + kTokenIdLength + 1);
  bool ok = IsTokenId(id) && token[kTokenPrefix.size() + kTokenIdLength] == '_';
  for (char c : secret) ok = ok && IsBase64Url(c);
  // 43 characters carry 258 bits for 256: the last one holds 4 bits and 2
  // zero bits, as 32 bytes encode (so that one secret has one spelling).
  if (ok) {
    static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    ok = kAlphabet.find(secret.back()) % 4 == 0;
  }
  if (!ok) return absl::InvalidArgumentError(absl::StrCat("malformed API token: ", kShape));
  return std::string(id);
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path, std::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(std::string(flag), " ", path, ": cannot read: ", std::strerror(errno)));
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  std::string raw = buf.str();
  std::string token(absl::StripAsciiWhitespace(raw));
  OPENSSL_cleanse(raw.data(), raw.size());
  if (token.empty()) return token;
  absl::StatusOr<std::string> id = ParseTokenId(token);
  if (!id.ok()) {
    OPENSSL_cleanse(token.data(), token.size());
    return absl::InvalidArgumentError(absl::StrCat(std::string(flag), " ", path, ": ", id.status().message()));
  }
  return token;
}

std::string TokenDisplay(std::string_view id) { return absl::StrCat(std::string(kTokenPrefix), std::string(id), "_…"); }

TokenKey::~TokenKey() { OPENSSL_cleanse(key_.data(), key_.size()); }

absl::StatusOr<std::unique_ptr<const TokenKey>> TokenKey::FromBytes(std::string key) {
  if (key.size() < kMinKeyBytes) {
    size_t n = key.size();
    OPENSSL_cleanse(key.data(), key.size());
    return absl::InvalidArgumentError(
        absl::StrCat("the token key has ", n, " bytes; at least ", kMinKeyBytes, " are needed"));
  }
  return std::unique_ptr<const TokenKey>(new TokenKey(std::move(key)));
}

absl::StatusOr<std::unique_ptr<const TokenKey>> TokenKey::FromFile(const std::string& path) {
  if (path.empty()) {
    return absl::InvalidArgumentError(
        "--token-key-file is not set: API tokens need a key file (64 hex digits; `openssl rand -hex 32`)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("--token-key-file ", path, ": cannot read: ", std::strerror(errno)));
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  std::string raw = buf.str();
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & S_IROTH) != 0) {
    logging::Warn("the token key file is readable by every user of this machine; make it mode 0600",
                  {{"flag", "--token-key-file"}, {"path", path}});
  }
  absl::string_view trimmed = absl::StripAsciiWhitespace(raw);
  bool hex = trimmed.size() >= 2 * kMinKeyBytes && trimmed.size() % 2 == 0;
  for (char c : trimmed) hex = hex && absl::ascii_isxdigit(static_cast<unsigned char>(c));
  std::string key = hex ? absl::HexStringToBytes(std::string(trimmed)) : raw;
  OPENSSL_cleanse(raw.data(), raw.size());
  absl::StatusOr<std::unique_ptr<const TokenKey>> loaded = FromBytes(std::move(key));
  if (!loaded.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--token-key-file ", path, ": ", loaded.status().message(),
        " (64 or more hex digits, or 32 or more raw bytes; make one with `openssl rand -hex 32`)"));
  }
  return loaded;
}

std::string TokenKey::Hash(std::string_view token) const {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()), reinterpret_cast<const unsigned char*>(token.data()),
       token.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

bool TokenKey::Matches(std::string_view token, std::string_view stored_hash) const {
  std::string h = Hash(token);
  return stored_hash.size() == h.size() && CRYPTO_memcmp(h.data(), stored_hash.data(), h.size()) == 0;
}

}  // namespace ferry::auth
