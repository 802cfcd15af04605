#pragma once

#include <string>

#include "common/outbox/outbox_store.h"
#include "common/postgres/connection_pool.h"

namespace ferry::outbox {

// OutboxStore on the `outbox` table of a service's schema (created by the
// service's own migration 001_outbox.sql). Enqueue also wakes the pool's
// local listeners of NotifyChannel(schema) (the service's forwarder) once
// the transaction ends (ConnectionPool::WakeAfterCommit); no PostgreSQL
// NOTIFY is sent.
class PostgresOutboxStore final : public OutboxStore {
 public:
  PostgresOutboxStore(postgres::ConnectionPool* pool, std::string schema, std::string service);

  static std::string NotifyChannel(const std::string& schema) { return schema + "_outbox"; }

  absl::Status Enqueue(pqxx::work& txn, v1::Event event) override;
  // More than one event: one statement for all (issue #23: a plan's two
  // events were two round trips).
  absl::Status EnqueueAll(pqxx::work& txn, std::vector<v1::Event> events) override;
  absl::StatusOr<Row> Prepare(v1::Event event) override;
  absl::StatusOr<std::vector<PendingEvent>> FetchUnsent(int limit) override;
  absl::Status MarkSent(const std::vector<int64_t>& ids) override;
  absl::Status RecordFailure(const std::vector<int64_t>& ids, const std::string& error) override;
  absl::StatusOr<int64_t> Backlog() override;

 private:
  postgres::ConnectionPool* pool_;
  const std::string schema_;
  const std::string service_;
  const std::string prefix_;  // prepared-statement name prefix
};

}  // namespace ferry::outbox
