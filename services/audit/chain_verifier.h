#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "ferry/v1/audit.pb.h"
#include "services/audit/event_store.h"

namespace ferry::audit {

struct ChainVerifierOptions {
  // Most stretches read and hashed at once, each on its own thread and
  // database connection, over all Verify calls in progress.
  int max_streams = 4;
  // A range is split only into stretches of at least this many events.
  int64_t min_events_per_stream = 50000;
};

// Recomputes the hash chain over a range of stored events, as documented in
// docs/audit.md: every event's canonical encoding from its stored columns,
// its hash, its link to its predecessor, and that no sequence is missing.
//
// A large range is split into consecutive stretches that are streamed from
// the store and hashed in parallel; each stretch checks its own events and
// links, and the links between stretches are checked when they are joined,
// so the outcome (first broken sequence and reason) is exactly that of one
// sequential pass. Thread-safe.
class ChainVerifier {
 public:
  // `store` must outlive the verifier.
  explicit ChainVerifier(EventStore& store, ChainVerifierOptions options = {});

  // Verifies events [from, to] (1 <= from <= to); `anchor` is the hash
  // expected as the first event's prev_hash (nullopt: trust it). Sets ok,
  // first_broken_sequence and reason ("gap: ...", "prev_hash mismatch: ...",
  // "hash mismatch: ...", "unreadable event: ..."), events_verified (those
  // before the first broken one) and, when ok, head_hash. Fills the values
  // of `wanted` (may be null) whose sequences verified with their hashes.
  // A broken chain is OK with ok = false; errors are the store's.
  absl::Status Verify(int64_t from, int64_t to, const std::optional<std::string>& anchor,
                      v1::VerifyChainResponse* out, std::map<int64_t, std::string>* wanted) const;

 private:
  EventStore& store_;
  const ChainVerifierOptions options_;
  // Streams of all Verify calls in progress: a call takes only what is left
  // of max_streams (at least one), bounding the connections they hold.
  mutable std::atomic<int> streams_in_use_{0};
};

}  // namespace ferry::audit
