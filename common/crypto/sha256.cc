#include "common/crypto/sha256.h"

#include <openssl/evp.h>

#include <cstdlib>

namespace ferry {

std::string Sha256(absl::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // SHA-256 of memory cannot fail short of an allocation failure inside
  // OpenSSL; a digest that is not 32 bytes must never be used as one.
  if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr) != 1 || len != 32) std::abort();
  return std::string(reinterpret_cast<const char*>(digest), len);
}

std::string Sha256Hex(absl::string_view data) { return HexEncode(Sha256(data)); }

std::string HexEncode(absl::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.resize(bytes.size() * 2);
  for (size_t i = 0; i < bytes.size(); ++i) {
    const unsigned char b = static_cast<unsigned char>(bytes[i]);
    out[2 * i] = kDigits[b >> 4];
    out[2 * i + 1] = kDigits[b & 0xf];
  }
  return out;
}

}  // namespace ferry
