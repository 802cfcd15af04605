#pragma once

#include "common/postgres/connection_pool.h"
#include "services/deployer/terraform/saved_plan_store.h"

namespace ferry::deployer {

// SavedPlanStore on the `deployer` schema's terraform_plans table, shared by
// every deployer replica (the directory store is per replica). A plan is
// kept under its digest (sha256:<hex> of the file; the target checks it
// before applying);
// unapplied plans older than a day are dropped when a new one is put (a
// Ferry plan waiting longer is re-planned). Thread-safe.
class PostgresSavedPlanStore final : public terraform::SavedPlanStore {
 public:
  explicit PostgresSavedPlanStore(postgres::ConnectionPool* pool);
  absl::Status Put(const std::string& app, const std::string& env, const std::string& digest,
                   const std::string& plan_file) override;
  absl::StatusOr<std::string> Get(const std::string& app, const std::string& env, const std::string& digest) override;
  absl::Status MarkApplied(const std::string& app, const std::string& env, const std::string& digest) override;
  absl::StatusOr<bool> WasApplied(const std::string& app, const std::string& env, const std::string& digest) override;

 private:
  postgres::ConnectionPool* pool_;
};

}  // namespace ferry::deployer
