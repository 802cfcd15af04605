#include "services/audit/chain_hasher.h"

#include <openssl/evp.h>

#include <array>
#include <cstdint>

#include "absl/strings/str_cat.h"

namespace ferry::audit {
namespace {

// 32 raw bytes from 64 lowercase hex characters; false when it is not that.
bool DecodeLowerHex64(absl::string_view s, unsigned char* raw) {
  static const std::array<int8_t, 256> kNibble = [] {
    std::array<int8_t, 256> t;
    t.fill(-1);
    for (int c = '0'; c <= '9'; ++c) t[c] = static_cast<int8_t>(c - '0');
    for (int c = 'a'; c <= 'f'; ++c) t[c] = static_cast<int8_t>(c - 'a' + 10);
    return t;
  }();
  if (s.size() != 64) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  int bad = 0;
  for (size_t i = 0; i < 32; ++i) {
    const int hi = kNibble[p[2 * i]];
    const int lo = kNibble[p[2 * i + 1]];
    bad |= hi | lo;
    raw[i] = static_cast<unsigned char>(hi << 4 | (lo & 0xf));
  }
  return bad >= 0;
}

// SHA-256, fetched once (an implicit fetch on every init costs a lock).
const EVP_MD* Sha256Md() {
  static const EVP_MD* md = [] {
    const EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return fetched != nullptr ? fetched : EVP_sha256();
  }();
  return md;
}

}  // namespace

const std::string& ZeroHash() {
  static const std::string* zero = new std::string(64, '0');
  return *zero;
}

absl::StatusOr<std::string> ChainHash(absl::string_view prev_hash, absl::string_view canonical) {
  thread_local ChainHasher hasher;
  std::string hex;
  absl::Status st = hasher.Hash(prev_hash, canonical, &hex);
  if (!st.ok()) return st;
  return hex;
}

struct ChainHasher::Context {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~Context() { EVP_MD_CTX_free(ctx); }
};

ChainHasher::ChainHasher() : ctx_(std::make_unique<Context>()) {}
ChainHasher::~ChainHasher() = default;

absl::Status ChainHasher::Hash(absl::string_view prev_hash, absl::string_view canonical, std::string* hex) {
  unsigned char raw[32];
  if (!DecodeLowerHex64(prev_hash, raw)) {
    return absl::InvalidArgumentError(absl::StrCat("prev_hash is not 64 lowercase hex characters: '",
                                                   std::string(prev_hash.substr(0, 80)), "'"));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (ctx_->ctx == nullptr || EVP_DigestInit_ex2(ctx_->ctx, Sha256Md(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx_->ctx, raw, sizeof(raw)) != 1 ||
      EVP_DigestUpdate(ctx_->ctx, canonical.data(), canonical.size()) != 1 ||
      EVP_DigestFinal_ex(ctx_->ctx, digest, &len) != 1 || len != 32) {
    return absl::InternalError("SHA-256 failed");
  }
  static constexpr char kDigits[] = "0123456789abcdef";
  hex->resize(64);
  for (unsigned int i = 0; i < len; ++i) {
    (*hex)[2 * i] = kDigits[digest[i] >> 4];
    (*hex)[2 * i + 1] = kDigits[digest[i] & 0xf];
  }
  return absl::OkStatus();
}

}  // namespace ferry::audit
