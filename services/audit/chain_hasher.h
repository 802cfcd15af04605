#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ferry::audit {

// The hash chain of the audit log, exactly as documented at the top of
// protos/ferry/v1/audit.proto and in docs/audit.md: each event's hash is
// lowercase_hex(SHA-256(raw(prev_hash) || canonical encoding)).

// 64 '0' characters: the prev_hash of the first event.
const std::string& ZeroHash();

// Computes chain hashes with one reusable SHA-256 context: after warm-up it
// allocates nothing. Not thread-safe; use one per thread.
class ChainHasher {
 public:
  ChainHasher();
  ~ChainHasher();
  ChainHasher(const ChainHasher&) = delete;
  ChainHasher& operator=(const ChainHasher&) = delete;

  // Sets `*hex` to lowercase_hex(SHA-256(raw(prev_hash) || canonical)), as
  // ChainHash. INVALID_ARGUMENT when prev_hash is not 64 lowercase hex
  // characters.
  absl::Status Hash(absl::string_view prev_hash, absl::string_view canonical, std::string* hex);

 private:
  struct Context;
  std::unique_ptr<Context> ctx_;
};

// lowercase_hex(SHA-256(raw(prev_hash) || canonical)). INVALID_ARGUMENT when
// prev_hash is not 64 lowercase hex characters. Thread-safe.
absl::StatusOr<std::string> ChainHash(absl::string_view prev_hash, absl::string_view canonical);

}  // namespace ferry::audit
