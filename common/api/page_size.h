#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ferry::api {

// Every List/Query RPC pages the same way: page_size 0 means the default,
// anything outside [0, kMaxPageSize] is refused.
inline constexpr int kDefaultPageSize = 50;
inline constexpr int kMaxPageSize = 1000;

// The number of items to return for a request's `page_size`, or
// INVALID_ARGUMENT "page_size: must be between 0 and 1000".
absl::StatusOr<int> PageSize(int64_t requested);

// A page token that is a positive sequence number (the last or next item's),
// as the planner's ListPlans and the deployer's ListDeployments issue them:
// 0 for an empty token (the first page), the number for a token that is a
// decimal number above 0, and INVALID_ARGUMENT "page_token: <refusal>" for
// anything else (tokens <= 0 included).
absl::StatusOr<int64_t> SequencePageToken(const std::string& token, absl::string_view refusal);

}  // namespace ferry::api
