#pragma once

#include "common/postgres/connection_pool.h"
#include "services/audit/history_store.h"

namespace ferry::audit {

// HistoryStore on the audit schema's events table (read-only, through the
// service's pool). The SQL of time travel and DORA is all in its .cc.
class PostgresHistoryStore final : public HistoryStore {
 public:
  explicit PostgresHistoryStore(postgres::ConnectionPool& pool);

  absl::StatusOr<std::vector<DeploymentOutcome>> StateAt(absl::Time at, const std::string& application,
                                                         const std::string& environment) override;
  absl::StatusOr<Moved> MovedBetween(absl::Time start, absl::Time end, const std::string& application,
                                     const std::string& environment) override;
  absl::StatusOr<std::vector<DeploymentOutcome>> Outcomes(absl::Time start, absl::Time end,
                                                          const std::string& application,
                                                          const std::string& environment, const ChangeCursor& after,
                                                          int limit) override;
  absl::StatusOr<std::vector<DeploymentOutcome>> DoraOutcomes(absl::Time start, absl::Time end,
                                                              const std::string& application,
                                                              const std::string& environment) override;

 private:
  postgres::ConnectionPool& pool_;
};

}  // namespace ferry::audit
