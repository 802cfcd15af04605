#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "ferry/v1/planner.pb.h"

namespace ferry::planner {

// The Git host's pull-request comments: Ferry's ONE comment per pull
// request, created once and edited in place. Thread-safe.
class PreviewCommenter {
 public:
  virtual ~PreviewCommenter() = default;
  // Creates (when `comment_id` is empty, or the comment is gone) or edits
  // the comment of pull request `number` of `repository_id` to `body`;
  // returns the comment's id. FAILED_PRECONDITION when the repository has no
  // Git host configured (nothing is posted); UNAVAILABLE when the host
  // cannot be reached (retry).
  virtual absl::StatusOr<std::string> Upsert(const std::string& repository_id, int64_t number,
                                             const std::string& comment_id, const std::string& body) = 0;
};

}  // namespace ferry::planner
