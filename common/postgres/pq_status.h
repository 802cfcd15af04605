#pragma once

#include <exception>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ferry::postgres {

// Translates a pqxx (or standard) exception into a Status:
//   unique_violation                   -> ALREADY_EXISTS
//   check / foreign-key / not-null     -> FAILED_PRECONDITION
//   serialization failure, deadlock    -> ABORTED (retry the transaction)
//   insufficient_privilege             -> PERMISSION_DENIED
//   broken_connection                  -> UNAVAILABLE
//   a RAISE from a trigger or function -> FAILED_PRECONDITION
//   anything else                      -> INTERNAL
// `context` prefixes the message, e.g. "insert event".
absl::Status StatusFromException(const std::exception& e, std::string_view context);

// The same translation for an error reported by libpq directly: `sqlstate`
// is the error's SQLSTATE ("" when there is none, e.g. a lost connection).
// `connection_lost` gives UNAVAILABLE whatever the state.
absl::Status StatusFromSqlState(absl::string_view sqlstate, absl::string_view message, absl::string_view context,
                                bool connection_lost = false);

}  // namespace ferry::postgres
