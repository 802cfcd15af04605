#include "services/planner/preview/postgres_preview_store.h"

#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"

namespace ferry::planner {
namespace {

constexpr char kPutPreview[] = "planner_put_preview";
constexpr char kDeletePreview[] = "planner_delete_preview";
constexpr char kGetPreview[] = "planner_get_preview";
constexpr char kListPreviews[] = "planner_list_previews";

absl::StatusOr<v1::PullRequestPreview> ParsePreview(const pqxx::field& field) {
  v1::PullRequestPreview out;
  if (!out.ParseFromString(pqxx::binarystring(field).str()))
    return absl::DataLossError("a stored pull-request preview does not parse");
  return out;
}

}  // namespace

PostgresPreviewStore::PostgresPreviewStore(postgres::ConnectionPool* pool) : pool_(pool) {
  pool_->Prepare(kPutPreview,
                 "INSERT INTO planner.pull_request_previews (repository_id, number, head_sha, preview, update_time) "
                 "VALUES ($1, $2, $3, $4, now()) ON CONFLICT (repository_id, number) DO UPDATE "
                 "SET head_sha = $3, preview = $4, update_time = now()");
  pool_->Prepare(kDeletePreview, "DELETE FROM planner.pull_request_previews WHERE repository_id = $1 AND number = $2");
  pool_->Prepare(kGetPreview,
                 "SELECT preview FROM planner.pull_request_previews WHERE repository_id = $1 AND number = $2");
  pool_->Prepare(kListPreviews,
                 "SELECT preview FROM planner.pull_request_previews WHERE repository_id = $1 ORDER BY number");
}

absl::Status PostgresPreviewStore::PutPreview(const v1::PullRequestPreview& preview) {
  return pool_->RunStatement([&](pqxx::transaction_base& txn) {
    txn.exec_prepared0(kPutPreview, preview.repository_id(), preview.number(), preview.head_sha(),
                       pqxx::binarystring(preview.SerializeAsString()));
    return absl::OkStatus();
  });
}

absl::Status PostgresPreviewStore::DeletePreview(const std::string& repository_id, int64_t number) {
  return pool_->RunStatement([&](pqxx::transaction_base& txn) {
    txn.exec_prepared0(kDeletePreview, repository_id, number);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::optional<v1::PullRequestPreview>> PostgresPreviewStore::GetPreview(const std::string& repository_id,
                                                                                       int64_t number) {
  return pool_->RunStatementWithResult<std::optional<v1::PullRequestPreview>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::optional<v1::PullRequestPreview>> {
        pqxx::result r = txn.exec_prepared(kGetPreview, repository_id, number);
        if (r.empty()) return std::optional<v1::PullRequestPreview>();
        absl::StatusOr<v1::PullRequestPreview> p = ParsePreview(r[0][0]);
        if (!p.ok()) return p.status();
        return std::optional<v1::PullRequestPreview>(std::move(*p));
      });
}

absl::StatusOr<std::vector<v1::PullRequestPreview>> PostgresPreviewStore::ListPreviews(const std::string& repository_id) {
  return pool_->RunStatementWithResult<std::vector<v1::PullRequestPreview>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::vector<v1::PullRequestPreview>> {
        std::vector<v1::PullRequestPreview> out;
        pqxx::result r = txn.exec_prepared(kListPreviews, repository_id);
        for (const auto& row : r) {
          absl::StatusOr<v1::PullRequestPreview> p = ParsePreview(row[0]);
          if (!p.ok()) return p.status();
          out.push_back(std::move(*p));
        }
        return out;
      });
}

}  // namespace ferry::planner
