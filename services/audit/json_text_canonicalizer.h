#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ferry::audit {

// Re-encodes JSON text canonically in one pass, without building a tree:
// values are written to `out` as they are parsed, and an object's members
// are reordered in place once its end is reached. Strings are escaped by
// AppendString and numbers formatted by FormatNumber, the same routines as
// every other canonical encoding here. Reuses its buffers between calls.
// Not thread-safe; use one per thread.
class JsonTextCanonicalizer {
 public:
  JsonTextCanonicalizer();
  ~JsonTextCanonicalizer();
  JsonTextCanonicalizer(const JsonTextCanonicalizer&) = delete;
  JsonTextCanonicalizer& operator=(const JsonTextCanonicalizer&) = delete;

  // Appends the JSON text `json` (e.g. what jsonb prints: any whitespace,
  // any key order, numbers in any notation) in canonical form: keys sorted
  // (the last of duplicate keys wins), numbers as doubles in canonical form,
  // strings re-escaped. INVALID_ARGUMENT when it is not JSON, not valid
  // UTF-8, nested deeper than 512 levels, or has a number that is not finite
  // as a double.
  absl::Status Append(absl::string_view json, std::string* out);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// The same with a canonicaliser of its own: see JsonTextCanonicalizer::Append.
absl::Status AppendCanonicalJsonText(absl::string_view json, std::string* out);

}  // namespace ferry::audit
