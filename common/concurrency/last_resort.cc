#include "common/concurrency/last_resort.h"

#include <exception>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/logging/logger.h"

namespace ferry::concurrency::internal {

absl::Status StatusOfCurrentException(std::string_view name) {
  std::string what = "not a std::exception";
  try {
    throw;
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
  }
  // Logging must not throw out of the net itself.
  try {
    logging::Error("exception caught by the last-resort handler; counted as a failure",
                   {{"where", std::string(name)}, {"error", what}});
  } catch (...) {
  }
  return absl::InternalError(absl::StrCat(absl::string_view(name.data(), name.size()), ": threw: ", what));
}

}  // namespace ferry::concurrency::internal
