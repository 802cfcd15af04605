#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ferry/v1/planner.pb.h"

namespace ferry::planner {

// Pull-request previews, one per (repository, number). Thread-safe.
class PreviewStore {
 public:
  virtual ~PreviewStore() = default;
  // Inserts or replaces the preview of (repository_id, number).
  virtual absl::Status PutPreview(const v1::PullRequestPreview& preview) = 0;
  // Removes it; OK when there is none.
  virtual absl::Status DeletePreview(const std::string& repository_id, int64_t number) = 0;
  // nullopt when there is none.
  virtual absl::StatusOr<std::optional<v1::PullRequestPreview>> GetPreview(const std::string& repository_id,
                                                                           int64_t number) = 0;
  // The repository's previews by number.
  virtual absl::StatusOr<std::vector<v1::PullRequestPreview>> ListPreviews(const std::string& repository_id) = 0;
};

}  // namespace ferry::planner
