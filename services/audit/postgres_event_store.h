#pragma once

#include <deque>
#include <memory>
#include <string>

#include <pqxx/connection>

#include "common/postgres/connection_pool.h"
#include "services/audit/event_store.h"

struct pg_conn;

namespace ferry::audit {

// The database role the service writes through: INSERT and SELECT on events
// and checkpoints, SELECT and UPDATE on the chain head, nothing else. Created
// by schema/001_events.sql.
inline constexpr char kWriterRole[] = "ferry_audit_writer";

// EventStore on PostgreSQL (schema "audit"). Reads use `pool`; the writer
// methods use two dedicated connections switched to kWriterRole with SET
// ROLE (opened lazily, reopened after a connection failure): the inserts a
// libpq one in pipeline mode, head reads and key lookups the other; checkpoints are
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
  void SendInsert(const ChainHead& expected, const std::vector<const v1::Event*>& events) override;
  absl::Status AwaitInserted() override;
  absl::Status AwaitCommitted() override;

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

  struct PipeCloser {
    void operator()(pg_conn* conn) const;
  };
  // A group sent on pipe_.
  struct Sent {
    size_t rows = 0;
    int64_t from = 0;         // the head it moves from
    absl::Status status;      // of sending, then of the statement, then of the commit
    bool sent = false;        // on pipe_: its results are to be read
    bool inserted = false;    // the statement's result has been read
  };
  // Reads the front group's statement result (once).
  void ReadInserted(Sent& group);

  postgres::ConnectionPool& pool_;
  // The writer connections, used only by the Appender's committer thread:
  // writer_ (libpqxx) for head reads and key lookups, pipe_ (libpq in
  // pipeline mode) for the inserts.
  std::unique_ptr<pqxx::connection> writer_;
  std::unique_ptr<pg_conn, PipeCloser> pipe_;
  std::deque<Sent> sent_;   // outstanding on pipe_, oldest first
  bool reset_pipe_ = false;  // pipe_ is unusable: close it once nothing is outstanding
};

}  // namespace ferry::audit
