#include "common/postgres/pq_status.h"

#include <pqxx/except>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace ferry::postgres {
namespace {

std::string Clean(const char* what) {
  std::string s = what;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

absl::Status StatusFromException(const std::exception& e, std::string_view context) {
  std::string msg = absl::StrCat(std::string(context), ": ", Clean(e.what()));
  if (dynamic_cast<const pqxx::unique_violation*>(&e)) return absl::AlreadyExistsError(msg);
  if (dynamic_cast<const pqxx::check_violation*>(&e) || dynamic_cast<const pqxx::foreign_key_violation*>(&e) ||
      dynamic_cast<const pqxx::not_null_violation*>(&e) || dynamic_cast<const pqxx::restrict_violation*>(&e)) {
    return absl::FailedPreconditionError(msg);
  }
  if (dynamic_cast<const pqxx::transaction_rollback*>(&e)) return absl::AbortedError(msg);
  if (dynamic_cast<const pqxx::insufficient_privilege*>(&e)) return absl::PermissionDeniedError(msg);
  if (dynamic_cast<const pqxx::broken_connection*>(&e)) return absl::UnavailableError(msg);
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
    const std::string& state = sql->sqlstate();
    if (state == "40001" || state == "40P01") return absl::AbortedError(msg);
    if (state.rfind("08", 0) == 0 || state == "57P01" || state == "57P03") return absl::UnavailableError(msg);
    if (state == "P0001") return absl::FailedPreconditionError(msg);
  }
  return absl::InternalError(msg);
}

}  // namespace ferry::postgres
