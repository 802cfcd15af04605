#pragma once

#include <memory>
#include <string>

#include <pqxx/connection>

#include "common/postgres/connection_pool.h"
#include "services/audit/event_store.h"

namespace ferry::audit {

// The database role the service writes through: INSERT and SELECT on events
// and checkpoints, SELECT and UPDATE on the chain head, nothing else. Created
// by schema/001_events.sql.
inline constexpr char kWriterRole[] = "ferry_audit_writer";

// EventStore on PostgreSQL (schema "audit"). Reads use `pool`; the writer
// methods use a dedicated connection switched to kWriterRole with SET ROLE
// (opened lazily, reopened after a connection failure); checkpoints are
// inserted with SET LOCAL ROLE. StreamChain reads on a libpq connection of
// its own per call (binary COPY), opened with the pool's connection string.
// All SQL of the audit service is in this file.
class PostgresEventStore final : public EventStore {
 public:
  explicit PostgresEventStore(postgres::ConnectionPool& pool);
  ~PostgresEventStore() override;

  absl::StatusOr<ChainHead> ReadWriterHead() override;
  absl::StatusOr<std::vector<v1::Event>> FindByIdempotencyKeys(
      const std::vector<std::pair<std::string, std::string>>& keys) override;
  absl::Status InsertChained(const ChainHead& expected, const std::vector<const v1::Event*>& events) override;

  absl::StatusOr<std::vector<v1::Event>> Query(const EventQuery& query) override;
  absl::Status StreamChain(int64_t after, int64_t before,
                           const std::function<bool(const StoredChainRow&)>& visit) override;
  absl::StatusOr<ChainHead> LastEvent() override;
  absl::StatusOr<ChainHead> StoredHead() override;

  absl::Status InsertCheckpoint(const v1::Checkpoint& checkpoint) override;
  absl::StatusOr<std::optional<v1::Checkpoint>> LatestCheckpoint(int64_t sequence) override;
  absl::StatusOr<std::vector<v1::Checkpoint>> CheckpointsInRange(int64_t from, int64_t to) override;

 private:
  // Runs `fn` on the writer connection, opening it first if needed.
  absl::Status WithWriter(const std::function<absl::Status(pqxx::connection&)>& fn, const char* context);

  postgres::ConnectionPool& pool_;
  std::unique_ptr<pqxx::connection> writer_;  // used only by the Appender's committer thread
};

}  // namespace ferry::audit
