#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace ferry::secrets {

// libsodium sealed boxes (crypto_box_seal: X25519 + XSalsa20-Poly1305 with an
// ephemeral sender key) for application secrets kept encrypted in Git: anyone
// with the deployer's public key can seal a value, only the deployer's secret
// key opens it, and a changed byte fails to open.
//
// Formats (text, so that they sit in Git and diff as one line):
//   secret key file  "ferry-secrets-key/v1:<base64 of the 32-byte X25519 secret key>\n"
//   public key       "ferry-secrets-public-key/v1:<base64 of the 32-byte public key>\n"
//   sealed value     "ferry-sealed/v1:<base64 of crypto_box_seal(value)>\n"
inline constexpr char kSecretKeyPrefix[] = "ferry-secrets-key/v1:";
inline constexpr char kPublicKeyPrefix[] = "ferry-secrets-public-key/v1:";
inline constexpr char kSealedPrefix[] = "ferry-sealed/v1:";

// Largest value sealed or opened (the deployer's secrets are tokens, keys and
// small configuration files).
inline constexpr size_t kMaxSealedValueBytes = 1024 * 1024;

// The deployer's key: the X25519 key pair that opens sealed values, and the
// key of the digests it shows instead of secret values. Immutable.
class SealedBoxKey {
 public:
  // A new random key.
  static absl::StatusOr<SealedBoxKey> Generate();
  // Reads a secret key file's text (kSecretKeyPrefix + base64, one line).
  // INVALID_ARGUMENT saying what is wrong, never quoting the key.
  static absl::StatusOr<SealedBoxKey> FromText(const std::string& text);

  // The secret key file's text.
  std::string SecretKeyText() const;
  // The public key, as `ferry-secrets seal` takes it.
  std::string PublicKeyText() const;

  // Opens a sealed value's text (kSealedPrefix + base64). INVALID_ARGUMENT
  // ("not a sealed value", "not sealed to this deployer's key or altered")
  // without the value.
  absl::StatusOr<std::string> Open(const std::string& sealed_text) const;

  // A keyed digest of `value` ("hmac-sha256:<64 hex>"), keyed by a key
  // derived from the secret key: equal values give equal digests (drift and
  // change detection work), but nobody without the key can test guesses of a
  // low-entropy value against a digest shown in a plan or a log.
  std::string Digest(const std::string& value) const;

 private:
  SealedBoxKey() = default;
  std::string public_key_;  // 32 bytes
  std::string secret_key_;  // 32 bytes
  std::string digest_key_;  // 32 bytes
};

// Seals `value` to a public key given as PublicKeyText() (or its base64
// alone), returning the sealed value's text. INVALID_ARGUMENT for a bad key
// or a value over kMaxSealedValueBytes.
absl::StatusOr<std::string> Seal(const std::string& value, const std::string& public_key_text);

// True when `text` starts like a sealed value.
bool LooksSealed(const std::string& text);

}  // namespace ferry::secrets
