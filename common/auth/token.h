#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

// Ferry API tokens: the string `ferry_<id>_<secret>`, where id is 12
// lowercase hex characters (6 random bytes; it names the token in lists,
// logs and audit events) and secret 43 base64url characters without padding
// (32 random bytes from OpenSSL's RAND_bytes). Ferry keeps only the keyed
// hash of the whole string, HMAC-SHA256(token key, token), never the secret
// (common/auth/token_store.h); the key is the file --token-key-file, the
// same for every service.
namespace ferry::auth {

inline constexpr std::string_view kTokenPrefix = "ferry_";
inline constexpr size_t kTokenIdLength = 12;
inline constexpr size_t kTokenSecretLength = 43;
inline constexpr size_t kTokenLength = 6 + kTokenIdLength + 1 + kTokenSecretLength;  // 62

// A fresh token and its id.
struct NewToken {
  std::string id;     // 12 lowercase hex characters
  std::string token;  // ferry_<id>_<secret>: the credential
};

// A new random token; INTERNAL if the random generator fails.
absl::StatusOr<NewToken> GenerateToken();

// Whether `token` starts with "ferry_": an API token rather than a JWT. No
// other check.
bool HasTokenPrefix(std::string_view token);

// The id of a well-shaped token, or INVALID_ARGUMENT describing the expected
// shape (never quoting the input, which may be a secret).
absl::StatusOr<std::string> ParseTokenId(std::string_view token);

// Whether `id` is 12 lowercase hex characters.
bool IsTokenId(std::string_view id);

// Reads a file holding one API token (surrounding whitespace ignored), such
// as the planner's --bootstrap-admin-token-file: "" for an empty file,
// NOT_FOUND when it cannot be read, INVALID_ARGUMENT for anything but one
// well-shaped token; errors name `flag` and the path, never the content.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path, std::string_view flag);

// How messages name a token without its secret: "ferry_<id>_…".
std::string TokenDisplay(std::string_view id);

// The key of tokens' keyed hashes. Immutable and thread-safe once loaded.
class TokenKey {
 public:
  // At least 32 bytes of key.
  static absl::StatusOr<std::unique_ptr<const TokenKey>> FromBytes(std::string key);

  // Reads the key file: 64 or more hex digits (surrounding whitespace
  // ignored; `openssl rand -hex 32` makes one), or else at least 32 raw
  // bytes. Errors name --token-key-file and the path: NOT_FOUND when it
  // cannot be read, INVALID_ARGUMENT when it holds too little key. A file
  // that others may read is loaded, with a warning in the log.
  static absl::StatusOr<std::unique_ptr<const TokenKey>> FromFile(const std::string& path);

  ~TokenKey();  // wipes the key from memory
  TokenKey(const TokenKey&) = delete;
  TokenKey& operator=(const TokenKey&) = delete;

  // HMAC-SHA256(key, token): 32 raw bytes.
  std::string Hash(std::string_view token) const;

  // Whether Hash(token) equals `stored_hash`, compared in constant time.
  bool Matches(std::string_view token, std::string_view stored_hash) const;

 private:
  explicit TokenKey(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

}  // namespace ferry::auth
