#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ferry/v1/audit.pb.h"

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

// One stored event as the chain sees it: its links and its canonical
// encoding recomputed from the stored columns (see event_chain.h).
struct ChainLink {
  int64_t sequence = 0;
  std::string prev_hash;
  std::string hash;
  std::string canonical;
  absl::Status error;  // set when the row has no canonical encoding
};

// Storage of the audit log: events, the chain head and checkpoints.
//
// The writer methods (ReadWriterHead, FindByIdempotencyKeys, InsertChained,
// InsertCheckpoint) write through the restricted audit writer role.
// ReadWriterHead, FindByIdempotencyKeys and InsertChained share one writer
// connection and must not be called concurrently (the Appender is their one
// caller). Every other method is thread-safe.
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
  virtual absl::Status InsertChained(const ChainHead& expected, const std::vector<v1::Event>& events) = 0;

  // Events matching `query`.
  virtual absl::StatusOr<std::vector<v1::Event>> Query(const EventQuery& query) = 0;
  // Stored events with after < sequence < before, ascending, at most
  // `limit`, as chain links.
  virtual absl::StatusOr<std::vector<ChainLink>> ScanChain(int64_t after, int64_t before, int limit) = 0;
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
};

}  // namespace ferry::audit
