#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace ferry {

// The raw 32-byte SHA-256 digest of `data` (OpenSSL EVP). Thread-safe.
std::string Sha256(absl::string_view data);

// Lowercase hex of SHA-256(`data`): 64 characters.
std::string Sha256Hex(absl::string_view data);

// Lowercase hex of `bytes`, two characters a byte.
std::string HexEncode(absl::string_view bytes);

}  // namespace ferry
