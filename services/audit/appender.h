#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "ferry/v1/audit.pb.h"
#include "services/audit/audit_metrics.h"
#include "services/audit/event_store.h"

namespace ferry::audit {

// The result of appending one event.
struct AppendResult {
  v1::Event event;         // as stored: sequence, append_time, prev_hash, hash set
  bool duplicate = false;  // its (service, idempotency_key) was already stored
};

// Extends the chain with group commit, in the callers' own threads (leader /
// follower, as LevelDB's writer queue): a caller queues its request; if no
// commit is running it becomes the leader, takes every request queued so far
// and appends them all in one atomic, durable statement (so the chain has a
// single total order and one WAL flush covers the whole group), answers them
// and hands over to the next queued caller. Callers that arrive while a
// commit runs wait for the next one. No thread of its own, no hand-off to
// one: with N concurrent callers a commit carries up to N requests.
// A caller is answered only once its events are durable. Thread-safe.
class Appender {
 public:
  // `metrics` may be null.
  Appender(EventStore& store, const Clock& clock, AuditMetrics* metrics);
  ~Appender();  // Stop()s.
  Appender(const Appender&) = delete;
  Appender& operator=(const Appender&) = delete;

  // Appends `events` (validated and normalised by AuditLog) atomically and in
  // order, after every request that was queued before. Events whose
  // (service, idempotency_key) is already stored, or repeated within the
  // request, come back with duplicate = true and append nothing.
  // UNAVAILABLE when the database is unreachable (the outcome may then be
  // unknown: retry with the same idempotency keys) or the appender stopped;
  // INVALID_ARGUMENT when an event has no canonical form.
  absl::StatusOr<std::vector<AppendResult>> Append(std::vector<v1::Event> events);

  // The highest sequence this process knows to be committed and durable.
  int64_t committed_sequence() const;
  // Changes on every WakeAll().
  uint64_t wake_generation() const;
  // Blocks until committed_sequence() > sequence, `timeout` passes, or
  // wake_generation() differs from `generation`. Returns committed_sequence().
  int64_t WaitForCommitAfter(int64_t sequence, absl::Duration timeout, uint64_t generation) const;
  // Wakes every WaitForCommitAfter().
  void WakeAll();

  // Answers queued callers UNAVAILABLE, refuses new ones and waits for a
  // running commit to finish. Idempotent.
  void Stop();

 private:
  struct Request {
    std::vector<v1::Event> events;
    std::optional<absl::StatusOr<std::vector<AppendResult>>> result;  // set when answered
  };
  // Appends `batch` (leader only, without mu_); returns one result per
  // request and the new durable tip (0 when nothing was appended).
  std::vector<absl::StatusOr<std::vector<AppendResult>>> Process(const std::vector<Request*>& batch,
                                                                 int64_t* tip,
                                                                 std::vector<v1::AuditAction>* appended);

  EventStore& store_;
  const Clock& clock_;
  AuditMetrics* metrics_;

  mutable std::mutex mu_;
  std::condition_variable turn_cv_;            // a request was answered or leadership is free
  mutable std::condition_variable commit_cv_;  // committed_ or generation_ changed
  std::deque<Request*> queue_;
  bool leading_ = false;  // a caller is committing a group
  bool stopping_ = false;
  int64_t committed_ = 0;
  uint64_t generation_ = 0;

  // Owned by the current leader (handed over under mu_).
  bool head_known_ = false;
  ChainHead head_;
};

}  // namespace ferry::audit
