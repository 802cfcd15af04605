#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ferry/v1/audit.pb.h"
#include "services/audit/chain_hasher.h"
#include "services/audit/event_encoder.h"

namespace ferry::audit {

// The sequence and hash of the newest event (0 and ZeroHash() when empty).
struct ChainHead {
  int64_t sequence = 0;
  std::string hash;
};

// One page of events: those matching `filter` with after < sequence < before,
// in ascending (or descending) sequence order, at most `limit`.
struct EventQuery {
  v1::EventFilter filter;
  bool descending = false;
  int64_t after = 0;
  int64_t before = INT64_MAX;
  int limit = 50;
};

// One stored event as chain verification reads it: the hashed fields as
// stored (with `fields.details`, when has_details, the stored details JSON
// text, not yet canonical; see StoredEventEncoder) and its links. The views
// point into the store's buffers and are valid only during the call that
// receives the row.
struct StoredChainRow {
  EventFields fields;
  absl::string_view prev_hash;
  absl::string_view hash;
  absl::Status error;  // set when the stored row has no event form (then only the sequence and links are set)
};

// Storage of the audit log: events, the chain head and checkpoints.
//
// The writer methods (ReadWriterHead, FindByIdempotencyKeys, InsertChained,
// InsertCheckpoint) write through the restricted audit writer role.
// ReadWriterHead, FindByIdempotencyKeys, InsertChained and the pipelined
// SendInsert, AwaitInserted and AwaitCommitted share the writer connections
// and must not be called concurrently (the Appender's committer thread is
// their one caller). Every other method is thread-safe.
class EventStore {
 public:
  virtual ~EventStore() = default;

  // The head as the writer sees it.
  virtual absl::StatusOr<ChainHead> ReadWriterHead() = 0;
  // Stored events with any of these (service, idempotency_key) pairs.
  virtual absl::StatusOr<std::vector<v1::Event>> FindByIdempotencyKeys(
      const std::vector<std::pair<std::string, std::string>>& keys) = 0;
  // Inserts `events` (consecutive, already chained from `expected`) and moves
  // the head to the last of them, in one atomic, durable commit. ABORTED
  // when the head is no longer `expected` (another writer appended: re-read
  // and re-chain); ALREADY_EXISTS when an idempotency key was taken
  // meanwhile; UNAVAILABLE when the outcome is unknown.
  virtual absl::Status InsertChained(const ChainHead& expected, const std::vector<const v1::Event*>& events) = 0;

  // The same, pipelined (the Appender's common path), on the same writer
  // connection: SendInsert starts InsertChained's work for one group, and
  // each sent group's outcome is then read, in send order, with
  // AwaitInserted (optional: returns once the group's statement has run,
  // its commit still to come) and AwaitCommitted (InsertChained's result;
  // the group is then done). A group may be sent while one other is
  // outstanding, chained from that one's last event: it runs only after that
  // one's commit. The defaults run InsertChained at send time.
  virtual void SendInsert(const ChainHead& expected, const std::vector<const v1::Event*>& events) {
    sent_.push_back(InsertChained(expected, events));
  }
  virtual absl::Status AwaitInserted() { return sent_.front(); }
  virtual absl::Status AwaitCommitted() {
    absl::Status status = sent_.front();
    sent_.pop_front();
    return status;
  }

  // Events matching `query`.
  virtual absl::StatusOr<std::vector<v1::Event>> Query(const EventQuery& query) = 0;
  // Calls `visit` with each stored event with after < sequence < before, in
  // ascending sequence order (missing sequences are simply not there), until
  // `visit` returns false. Streams: memory does not grow with the range.
  // Thread-safe; concurrent calls each read on their own connection.
  virtual absl::Status StreamChain(int64_t after, int64_t before,
                                   const std::function<bool(const StoredChainRow&)>& visit) = 0;
  // The newest stored event's sequence and hash, from the events table.
  virtual absl::StatusOr<ChainHead> LastEvent() = 0;
  // The head row as stored (what appends last moved it to).
  virtual absl::StatusOr<ChainHead> StoredHead() = 0;

  // Stores a checkpoint; OK if one already exists at that sequence.
  virtual absl::Status InsertCheckpoint(const v1::Checkpoint& checkpoint) = 0;
  // The newest checkpoint at or before `sequence` (0 = the newest); nullopt
  // when there is none.
  virtual absl::StatusOr<std::optional<v1::Checkpoint>> LatestCheckpoint(int64_t sequence) = 0;
  // Checkpoints with from <= sequence <= to, ascending.
  virtual absl::StatusOr<std::vector<v1::Checkpoint>> CheckpointsInRange(int64_t from, int64_t to) = 0;

 private:
  std::deque<absl::Status> sent_;  // the default pipelined methods' outcomes
};

}  // namespace ferry::audit
