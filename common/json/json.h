#pragma once

#include <cstddef>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ferry {

// The only way Ferry code turns text into nlohmann::json and back. Its own
// parse() and dump() throw (on malformed text, and on a string that is not
// valid UTF-8), and one throw on a background thread ends the process; these
// never throw. tests/common/json/no_throwing_json_calls.sh fails the build's
// tests on a direct call anywhere else in common/ and services/.

// Bounds on parsing untrusted JSON. nlohmann parses any depth without
// recursion, but copying, comparing, dumping and destroying-by-hand a value
// recurse once per level: 100,000 nested arrays parse, then their first copy
// overflows the stack.
struct JsonLimits {
  int max_depth = 1000;  // nested arrays and objects; [] is 1
  size_t max_bytes = std::numeric_limits<size_t>::max();
};

// Parses `text` as one JSON value (nothing but whitespace after it).
// INVALID_ARGUMENT with the parser's description (byte position included)
// when it is not JSON or not valid UTF-8; RESOURCE_EXHAUSTED "JSON nested
// deeper than N levels" or "JSON text of N bytes, more than M" past
// `limits`. The one-argument form applies JsonLimits' defaults (1,000 levels,
// any size), which every recursive use of the value survives.
absl::StatusOr<nlohmann::json> ParseJson(absl::string_view text, const JsonLimits& limits);
absl::StatusOr<nlohmann::json> ParseJson(absl::string_view text);

// `value` as JSON text: compact when `indent` is negative, else pretty with
// that many spaces. Object keys come out sorted (nlohmann keeps objects in a
// std::map), so the compact form is canonical for a given value.
// INVALID_ARGUMENT when a string in `value` is not valid UTF-8.
absl::StatusOr<std::string> DumpJson(const nlohmann::json& value, int indent = -1);

// As DumpJson, but never fails: invalid UTF-8 bytes are written as U+FFFD.
// The same text as DumpJson for every value DumpJson accepts. For logs,
// messages, and values known to be valid (e.g. parsed by ParseJson).
std::string DumpJsonLossy(const nlohmann::json& value, int indent = -1);

// The member `key` of `object` as a T: `fallback` when `object` has no such
// member or it is null; INVALID_ARGUMENT naming `key` when it holds a value
// of another type (nlohmann's value() and get<T>() throw there: a record
// edited or corrupted on disk would end the process).
template <typename T>
absl::StatusOr<T> JsonField(const nlohmann::json& object, const std::string& key, T fallback) {
  if (!object.is_object()) return absl::InvalidArgumentError(key + ": the enclosing value is not an object");
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return fallback;
  try {
    return it->template get<T>();
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(key + ": has the wrong type (" + it->type_name() + ")");
  }
}

}  // namespace ferry
