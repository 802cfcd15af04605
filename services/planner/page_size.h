#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace ferry::planner {

// One job: the planner's page-size rule for List* calls: 0 means the default
// (50); more than 1000 or negative is INVALID_ARGUMENT. Thread-safe.
inline absl::StatusOr<int> PageSize(int requested) {
  constexpr int kMaxPageSize = 1000;
  constexpr int kDefaultPageSize = 50;
  if (requested < 0 || requested > kMaxPageSize)
    return absl::InvalidArgumentError(absl::StrCat("page_size: must be between 0 and ", kMaxPageSize));
  return requested == 0 ? kDefaultPageSize : requested;
}

}  // namespace ferry::planner
