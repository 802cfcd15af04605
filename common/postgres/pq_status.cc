#include "common/postgres/pq_status.h"

#include <pqxx/except>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace ferry::postgres {
namespace {

std::string Clean(const char* what) {
  std::string s = what;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

absl::Status StatusFromSqlState(absl::string_view state, absl::string_view message, absl::string_view context,
                                bool connection_lost) {
  std::string msg = absl::StrCat(context, ": ", Clean(std::string(message).c_str()));
  if (connection_lost || absl::StartsWith(state, "08") || state == "57P01" || state == "57P03") {
    return absl::UnavailableError(msg);
  }
  if (state == "23505") return absl::AlreadyExistsError(msg);
  if (state == "23514" || state == "23503" || state == "23502" || state == "23001" || state == "P0001") {
    return absl::FailedPreconditionError(msg);
  }
  if (absl::StartsWith(state, "40")) return absl::AbortedError(msg);
  if (state == "42501") return absl::PermissionDeniedError(msg);
  return absl::InternalError(msg);
}

absl::Status StatusFromException(const std::exception& e, std::string_view context) {
  const absl::string_view where(context.data(), context.size());
  if (dynamic_cast<const pqxx::broken_connection*>(&e)) return StatusFromSqlState("", e.what(), where, true);
  // Not an sql_error in libpqxx 6 (serialization failure, deadlock, commit
  // outcome unknown).
  if (dynamic_cast<const pqxx::transaction_rollback*>(&e)) {
    return absl::AbortedError(absl::StrCat(where, ": ", Clean(e.what())));
  }
  const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e);
  if (sql == nullptr) return absl::InternalError(absl::StrCat(where, ": ", Clean(e.what())));
  // libpqxx 6 does not always fill in sqlstate(); its exception classes say
  // as much.
  std::string state = sql->sqlstate();
  if (dynamic_cast<const pqxx::unique_violation*>(&e)) {
    state = "23505";
  } else if (dynamic_cast<const pqxx::check_violation*>(&e) || dynamic_cast<const pqxx::foreign_key_violation*>(&e) ||
             dynamic_cast<const pqxx::not_null_violation*>(&e) || dynamic_cast<const pqxx::restrict_violation*>(&e)) {
    state = "23514";
  } else if (dynamic_cast<const pqxx::insufficient_privilege*>(&e)) {
    state = "42501";
  }
  return StatusFromSqlState(state, e.what(), where);
}

}  // namespace ferry::postgres
