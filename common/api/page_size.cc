#include "common/api/page_size.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ferry::api {

absl::StatusOr<int> PageSize(int64_t requested) {
  if (requested < 0 || requested > kMaxPageSize) {
    return absl::InvalidArgumentError(absl::StrCat("page_size: must be between 0 and ", kMaxPageSize));
  }
  return requested == 0 ? kDefaultPageSize : static_cast<int>(requested);
}

absl::StatusOr<int64_t> SequencePageToken(const std::string& token, absl::string_view refusal) {
  if (token.empty()) return 0;
  int64_t sequence = 0;
  if (!absl::SimpleAtoi(token, &sequence) || sequence <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("page_token: ", refusal));
  }
  return sequence;
}

}  // namespace ferry::api
