#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <pqxx/transaction>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ferry/v1/audit.pb.h"

namespace ferry::outbox {

// One undelivered audit event.
struct PendingEvent {
  int64_t id = 0;
  v1::Event event;
};

// The transactional outbox of one service: audit events written in the same
// PostgreSQL transaction as the state change they report, and delivered to
// the audit service later by an OutboxForwarder. Implementations are
// thread-safe.
class OutboxStore {
 public:
  virtual ~OutboxStore() = default;

  // Adds `event` to the outbox inside the caller's transaction `txn`; it is
  // delivered only if `txn` commits. `event.idempotency_key` is required and
  // unique per service (INVALID_ARGUMENT when empty; ALREADY_EXISTS, and the
  // caller's transaction is unusable, when reused). `event.service` is set to
  // the store's service name; `event.time` defaults to now.
  virtual absl::Status Enqueue(pqxx::work& txn, v1::Event event) = 0;

  // Enqueue of each event, in order, all or none (a refused event fails the
  // caller's transaction as Enqueue does). A store may write them in one
  // statement; this default enqueues them one by one.
  virtual absl::Status EnqueueAll(pqxx::work& txn, std::vector<v1::Event> events) {
    for (v1::Event& e : events) {
      absl::Status s = Enqueue(txn, std::move(e));
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  // The row Enqueue would insert for `event`, checked, completed and
  // sanitized as Enqueue does, for a store that writes it in a statement of
  // its own (with its change, in one round trip) into `table`, and then
  // wakes `channel` as Enqueue does (ConnectionPool::WakeAfterCommit, when
  // the row was written). UNIMPLEMENTED: the store has no such table; use
  // Enqueue.
  struct Row {
    std::string table;  // schema-qualified, e.g. "deployer.outbox"
    std::string channel;
    std::string idempotency_key;
    std::string event;  // serialized v1::Event
  };
  virtual absl::StatusOr<Row> Prepare(v1::Event event) {
    return absl::UnimplementedError("this outbox writes its events itself (Enqueue)");
  }

  // Up to `limit` undelivered events, oldest first.
  virtual absl::StatusOr<std::vector<PendingEvent>> FetchUnsent(int limit) = 0;

  // Marks the given events delivered.
  virtual absl::Status MarkSent(const std::vector<int64_t>& ids) = 0;

  // Records a failed delivery attempt for the given events.
  virtual absl::Status RecordFailure(const std::vector<int64_t>& ids, const std::string& error) = 0;

  // Number of undelivered events.
  virtual absl::StatusOr<int64_t> Backlog() = 0;
};

}  // namespace ferry::outbox
