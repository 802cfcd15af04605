#pragma once

#include <google/protobuf/message.h>

#include "absl/status/status.h"

namespace ferry {

// Why text holding U+0000 is refused: PostgreSQL text cannot store it, and
// libpq ends a text parameter at it, so "web\0x" would name "web".
inline constexpr char kNulInText[] = "contains a NUL character (U+0000), which PostgreSQL text cannot store";

// OK, or INVALID_ARGUMENT naming the first string field of `message` that
// holds U+0000, by its path (e.g. "events[2].message", or
// "events[0].details.fields[step].string_value" in a map), anywhere in
// nested, repeated and map fields (bytes fields may hold any byte). gRPC
// handlers call it before a request's strings reach SQL.
absl::Status RejectNulInStrings(const google::protobuf::Message& message);

}  // namespace ferry
