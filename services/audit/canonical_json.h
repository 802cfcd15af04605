#pragma once

#include <string>

#include <google/protobuf/struct.pb.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ferry::audit {

// The pieces of the audit log's canonical JSON encoding (documented at the
// top of protos/ferry/v1/audit.proto and in docs/audit.md) that every
// canonical form is written with: strings, numbers and Structs. Pure
// functions; thread-safe.

// Appends `s` as a JSON string, escaped as in the canonical encoding (as
// nlohmann::json and Python's json.dumps(ensure_ascii=False) write it).
// INVALID_ARGUMENT (and `out` unchanged) when it is not valid UTF-8.
absl::Status AppendJsonString(absl::string_view s, std::string* out);

// A number (every number in an event is a double) in canonical form: an
// integral value below 2^53 in magnitude as an integer, any other as its
// shortest round-trip digits, exactly as Python's json.dumps(float).
std::string FormatCanonicalNumber(double d);

// Appends `s` in the canonical encoding (sorted keys, canonical numbers).
// INVALID_ARGUMENT on invalid UTF-8, a number that is not finite, or a value
// with no kind.
absl::Status AppendCanonicalStruct(const google::protobuf::Struct& s, std::string* out);

}  // namespace ferry::audit
