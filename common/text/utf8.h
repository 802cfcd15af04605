#pragma once

#include <string>
#include "absl/strings/string_view.h"

namespace ferry::text {

// True when `s` is well-formed UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF).
bool IsValidUtf8(absl::string_view s);

// `s` made safe for a proto3 string field, a log line or an audit message:
// well-formed UTF-8 is kept as it is; every byte that is not part of a
// well-formed sequence becomes the four characters "\xNN". Messages that
// quote input from Git (file names, parser errors) go through this, because
// one invalid byte in a string field makes the whole message unparseable for
// the peer that receives it.
std::string SanitizeUtf8(absl::string_view s);

}  // namespace ferry::text
