#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
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

// Extends the chain with group commit: one thread takes every request queued
// while the previous commit ran and appends them all in one atomic
// statement (so the chain has a single total order); that commit does not
// wait for its WAL flush. A second thread makes everything committed so far
// durable with one synchronous commit (EventStore::FlushWal) and only then
// answers the callers, so commits and flushes overlap and concurrent callers
// share one fsync. A caller is answered only once its events are durable.
// Thread-safe.
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
  // UNAVAILABLE when the database is unreachable or the appender stopped;
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

  // Fails queued requests with UNAVAILABLE and stops the thread. Idempotent.
  void Stop();

 private:
  struct Request {
    std::vector<v1::Event> events;
    std::promise<absl::StatusOr<std::vector<AppendResult>>> done;
  };
  // A committed group waiting for its flush.
  struct Committed {
    std::vector<std::unique_ptr<Request>> batch;
    std::vector<absl::StatusOr<std::vector<AppendResult>>> results;
    std::vector<v1::AuditAction> appended;
    int64_t tip = 0;
  };
  void Run();
  void RunFlusher();
  void Process(std::vector<std::unique_ptr<Request>>& batch);

  EventStore& store_;
  const Clock& clock_;
  AuditMetrics* metrics_;

  mutable std::mutex mu_;
  mutable std::condition_variable queue_cv_;
  mutable std::condition_variable commit_cv_;
  std::deque<std::unique_ptr<Request>> queue_;
  mutable std::condition_variable flush_cv_;
  std::deque<Committed> committed_groups_;
  bool stopping_ = false;
  bool flusher_stopping_ = false;
  int64_t committed_ = 0;
  uint64_t generation_ = 0;

  // Appender thread only.
  bool head_known_ = false;
  ChainHead head_;

  std::thread thread_;
  std::thread flusher_;
};

}  // namespace ferry::audit
