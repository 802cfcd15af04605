#include "common/secrets/sealed_box.h"

#include <sodium.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace ferry::secrets {
namespace {

constexpr char kDigestContext[] = "ferry secret digest v1";

absl::Status Init() {
  if (sodium_init() < 0) return absl::InternalError("libsodium could not be initialised");
  return absl::OkStatus();
}

// The base64 after `prefix` (optional when `prefix_optional`), decoded.
absl::StatusOr<std::string> Unwrap(const std::string& text, const char* prefix, bool prefix_optional,
                                   const std::string& what) {
  std::string s(absl::StripAsciiWhitespace(text));
  if (absl::StartsWith(s, prefix)) {
    s = s.substr(std::string(prefix).size());
  } else if (!prefix_optional) {
    return absl::InvalidArgumentError(absl::StrCat("is not ", what, " (it must start with \"", prefix, "\")"));
  }
  std::string out;
  if (s.empty() || !absl::Base64Unescape(s, &out)) {
    return absl::InvalidArgumentError(absl::StrCat("is not ", what, " (bad base64)"));
  }
  return out;
}

}  // namespace

absl::StatusOr<SealedBoxKey> SealedBoxKey::Generate() {
  if (absl::Status s = Init(); !s.ok()) return s;
  unsigned char pk[crypto_box_PUBLICKEYBYTES];
  unsigned char sk[crypto_box_SECRETKEYBYTES];
  crypto_box_keypair(pk, sk);
  absl::StatusOr<SealedBoxKey> key = FromText(absl::StrCat(
      kSecretKeyPrefix, absl::Base64Escape(std::string(reinterpret_cast<char*>(sk), sizeof sk))));
  sodium_memzero(sk, sizeof sk);
  return key;
}

absl::StatusOr<SealedBoxKey> SealedBoxKey::FromText(const std::string& text) {
  if (absl::Status s = Init(); !s.ok()) return s;
  absl::StatusOr<std::string> sk = Unwrap(text, kSecretKeyPrefix, false, "a Ferry secrets key");
  if (!sk.ok()) return sk.status();
  if (sk->size() != crypto_box_SECRETKEYBYTES) {
    return absl::InvalidArgumentError(absl::StrCat("is not a Ferry secrets key (", crypto_box_SECRETKEYBYTES,
                                                   " bytes expected)"));
  }
  SealedBoxKey key;
  key.secret_key_ = *sk;
  key.public_key_.resize(crypto_box_PUBLICKEYBYTES);
  crypto_scalarmult_base(reinterpret_cast<unsigned char*>(key.public_key_.data()),
                         reinterpret_cast<const unsigned char*>(key.secret_key_.data()));
  key.digest_key_.resize(crypto_auth_hmacsha256_KEYBYTES);
  crypto_generichash(reinterpret_cast<unsigned char*>(key.digest_key_.data()), key.digest_key_.size(),
                     reinterpret_cast<const unsigned char*>(kDigestContext), sizeof kDigestContext - 1,
                     reinterpret_cast<const unsigned char*>(key.secret_key_.data()), key.secret_key_.size());
  return key;
}

std::string SealedBoxKey::SecretKeyText() const {
  return absl::StrCat(kSecretKeyPrefix, absl::Base64Escape(secret_key_), "\n");
}

std::string SealedBoxKey::PublicKeyText() const {
  return absl::StrCat(kPublicKeyPrefix, absl::Base64Escape(public_key_), "\n");
}

absl::StatusOr<std::string> SealedBoxKey::Open(const std::string& sealed_text) const {
  absl::StatusOr<std::string> box = Unwrap(sealed_text, kSealedPrefix, false, "a sealed value");
  if (!box.ok()) return box.status();
  if (box->size() < crypto_box_SEALBYTES || box->size() > kMaxSealedValueBytes + crypto_box_SEALBYTES) {
    return absl::InvalidArgumentError("is not a sealed value (wrong length)");
  }
  std::string out(box->size() - crypto_box_SEALBYTES, '\0');
  if (crypto_box_seal_open(reinterpret_cast<unsigned char*>(out.data()),
                           reinterpret_cast<const unsigned char*>(box->data()), box->size(),
                           reinterpret_cast<const unsigned char*>(public_key_.data()),
                           reinterpret_cast<const unsigned char*>(secret_key_.data())) != 0) {
    return absl::InvalidArgumentError(
        "cannot be opened: it was not sealed to this deployer's key (--secrets-key-file), or it was altered");
  }
  return out;
}

std::string SealedBoxKey::Digest(const std::string& value) const {
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(digest_key_.data()), digest_key_.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(value.data()), value.size());
  crypto_auth_hmacsha256_final(&st, mac);
  return absl::StrCat("hmac-sha256:", absl::BytesToHexString(std::string(reinterpret_cast<char*>(mac), sizeof mac)));
}

absl::StatusOr<std::string> Seal(const std::string& value, const std::string& public_key_text) {
  if (absl::Status s = Init(); !s.ok()) return s;
  absl::StatusOr<std::string> pk = Unwrap(public_key_text, kPublicKeyPrefix, true, "a Ferry secrets public key");
  if (!pk.ok()) return pk.status();
  if (pk->size() != crypto_box_PUBLICKEYBYTES) {
    return absl::InvalidArgumentError(absl::StrCat("is not a Ferry secrets public key (", crypto_box_PUBLICKEYBYTES,
                                                   " bytes expected)"));
  }
  if (value.size() > kMaxSealedValueBytes) {
    return absl::InvalidArgumentError(absl::StrCat("the value is larger than ", kMaxSealedValueBytes, " bytes"));
  }
  std::string box(value.size() + crypto_box_SEALBYTES, '\0');
  if (crypto_box_seal(reinterpret_cast<unsigned char*>(box.data()), reinterpret_cast<const unsigned char*>(value.data()),
                      value.size(), reinterpret_cast<const unsigned char*>(pk->data())) != 0) {
    return absl::InternalError("crypto_box_seal failed");
  }
  return absl::StrCat(kSealedPrefix, absl::Base64Escape(box), "\n");
}

bool LooksSealed(const std::string& text) {
  return absl::StartsWith(absl::StripLeadingAsciiWhitespace(text), kSealedPrefix);
}

}  // namespace ferry::secrets
