#pragma once

#include "common/postgres/connection_pool.h"
#include "services/planner/preview/preview_store.h"

namespace ferry::planner {

// PreviewStore on planner.pull_request_previews
// (schema/007_pull_request_previews.sql). Thread-safe.
class PostgresPreviewStore final : public PreviewStore {
 public:
  explicit PostgresPreviewStore(postgres::ConnectionPool* pool);

  absl::Status PutPreview(const v1::PullRequestPreview& preview) override;
  absl::Status DeletePreview(const std::string& repository_id, int64_t number) override;
  absl::StatusOr<std::optional<v1::PullRequestPreview>> GetPreview(const std::string& repository_id,
                                                                   int64_t number) override;
  absl::StatusOr<std::vector<v1::PullRequestPreview>> ListPreviews(const std::string& repository_id) override;

 private:
  postgres::ConnectionPool* pool_;
};

}  // namespace ferry::planner
