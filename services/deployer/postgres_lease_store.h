#pragma once

#include "common/outbox/outbox_store.h"
#include "common/postgres/connection_pool.h"
#include "services/deployer/lease_store.h"

namespace ferry::deployer {

// LeaseStore on the `deployer` schema's environment_leases table. Expiry is
// by PostgreSQL's now(), so replicas' clocks never decide who holds a
// lease; acquisitions lock the rows they take (FOR UPDATE SKIP LOCKED), so
// two replicas racing for one lease never both get it. Acquisition events
// go through `outbox` in the same transaction. Thread-safe.
class PostgresLeaseStore final : public LeaseStore {
 public:
  PostgresLeaseStore(postgres::ConnectionPool* pool, outbox::OutboxStore* outbox);

  absl::Status Register(const std::string& env, const std::string& group) override;
  absl::StatusOr<std::vector<EnvironmentLease>> Acquire(const std::string& holder, const std::string& group,
                                                        const std::vector<std::string>& held, bool reclaim_own,
                                                        absl::Duration ttl, int limit,
                                                        const LeaseEvents& events) override;
  absl::StatusOr<std::vector<EnvironmentLease>> Renew(const std::string& holder, const std::string& group,
                                                      const std::map<std::string, int64_t>& held,
                                                      absl::Duration ttl) override;
  absl::Status Release(const std::string& holder, const std::map<std::string, int64_t>& held) override;

 private:
  postgres::ConnectionPool* pool_;
  outbox::OutboxStore* outbox_;
};

}  // namespace ferry::deployer
