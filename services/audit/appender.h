#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/concurrency/change_signal.h"
#include "common/clock/clock.h"
#include "common/concurrency/mutex.h"
#include "ferry/v1/audit.pb.h"
#include "services/audit/audit_metrics.h"
#include "services/audit/event_store.h"

namespace ferry::audit {

// The result of appending one event.
struct AppendResult {
  v1::Event event;         // as stored: sequence, append_time, prev_hash, hash set
  bool duplicate = false;  // its (service, idempotency_key) was already stored
};

// Extends the chain with group commit on a committer thread of its own.
// Callers queue requests (AppendAsync, without blocking, as the gRPC
// callback handlers do, or Append, which waits). The committer takes every
// request queued so far, chains them and appends them all in one atomic
// statement that commits durably (so the chain has a single total order and
// one WAL flush covers the whole group), hands the answers to a responder
// thread and takes the next group at once. Requests that arrive during a
// commit share the next one: with N callers in flight a commit carries up
// to N requests. Once a group's statement has run, the requests queued
// meanwhile are chained after it and sent behind it on the same pipelined
// connection, so the database starts on them as soon as the first commit is
// durable (EventStore::SendInsert). A request is answered only once its events are durable;
// committed requests are answered in the order they were queued.
// Thread-safe.
class Appender {
 public:
  using Result = absl::StatusOr<std::vector<AppendResult>>;
  // Called once per request, on the responder thread (or on the caller's,
  // when the appender has stopped). Must not block.
  using Done = std::function<void(Result)>;

  // Starts the committer and responder threads. `metrics` may be null.
  Appender(EventStore& store, const Clock& clock, AuditMetrics* metrics);
  ~Appender();  // Stop()s.
  Appender(const Appender&) = delete;
  Appender& operator=(const Appender&) = delete;

  // Appends `events` (validated and normalised by AuditLog) atomically and in
  // order, after every request that was queued before, and then calls `done`.
  // Events whose (service, idempotency_key) is already stored, or repeated
  // within the request, come back with duplicate = true and append nothing.
  // UNAVAILABLE when the database is unreachable (the outcome may then be
  // unknown: retry with the same idempotency keys) or the appender stopped;
  // INVALID_ARGUMENT when an event has no canonical form (only that request
  // fails).
  void AppendAsync(std::vector<v1::Event> events, Done done);
  // AppendAsync, waiting for the answer.
  Result Append(std::vector<v1::Event> events);

  // The highest sequence this process knows to be committed and durable.
  int64_t committed_sequence() const;
  // Changes on every WakeAll() and every commit that moves
  // committed_sequence() on.
  uint64_t wake_generation() const;
  // Blocks until committed_sequence() > sequence, `timeout` passes, or
  // wake_generation() differs from `generation`. Returns committed_sequence().
  int64_t WaitForCommitAfter(int64_t sequence, absl::Duration timeout, uint64_t generation) const;
  // Wakes every WaitForCommitAfter().
  void WakeAll();

  // Answers queued requests UNAVAILABLE, refuses new ones, and waits for a
  // running commit to finish (its requests are answered). Idempotent.
  void Stop();

 private:
  using Key = std::pair<std::string, std::string>;  // (service, idempotency_key)
  struct Request {
    std::vector<v1::Event> events;
    Done done;
    std::vector<bool> timeless;  // per event: it came without a time (it gets the append time)
  };
  // A group of requests chained from a head, to be inserted.
  struct Chained {
    ChainHead from;
    ChainHead tip;                                        // after the last fresh event
    std::vector<const v1::Event*> fresh;                  // to insert, in order
    std::vector<absl::Status> request_status;             // per request: not OK when it cannot be chained
    std::vector<std::vector<const v1::Event*>> answers;   // per request, per event: itself or the earlier event
  };
  // A committed group, waiting for the responder.
  struct Answered {
    std::vector<Request> batch;
    std::vector<Result> results;  // one per request
  };
  void RunCommitter();
  void RunResponder();
  // Takes the queued requests for one commit.
  std::vector<Request> TakeQueued() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Chains the requests' events in place from `from`; events whose key is
  // in `stored` (or earlier in the batch) are answered as duplicates.
  Chained Chain(std::vector<Request>& batch, const ChainHead& from, const std::map<Key, v1::Event>& stored) const;
  // The answers of a chained batch once it is committed (the events move
  // into them).
  static std::vector<Result> Answers(std::vector<Request>& batch, const Chained& chained);
  static std::vector<v1::AuditAction> Actions(const Chained& chained);
  // Hands a committed batch to the responder.
  void Committed(std::vector<Request> batch, std::vector<Result> results, int64_t tip,
                 const std::vector<v1::AuditAction>& appended);
  // Process, then Committed.
  void CommitSerially(std::vector<Request> batch);
  // Chains the requests' events and appends them, retrying conflicts
  // (committer thread, without mu_); returns one result per request (the
  // events move into them) and the new tip (0 when nothing was appended).
  std::vector<Result> Process(std::vector<Request>& batch, int64_t* tip,
                              std::vector<v1::AuditAction>* appended);

  EventStore& store_;
  const Clock& clock_;
  AuditMetrics* metrics_;

  mutable Mutex mu_;
  CondVar queued_cv_;  // queue_ or stopping_ changed
  CondVar answer_cv_;  // answers_ or committer_done_ changed
  std::deque<Request> queue_ ABSL_GUARDED_BY(mu_);
  std::deque<Answered> answers_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool committer_done_ ABSL_GUARDED_BY(mu_) = false;
  int64_t committed_ ABSL_GUARDED_BY(mu_) = 0;

  // The committer thread's own.
  bool head_known_ = false;
  ChainHead head_;

  // Notified when committed_ moves on, at WakeAll() and at Stop(): what
  // WaitForCommitAfter() (the tails) wait on.
  concurrency::ChangeSignal commit_signal_;

  Mutex join_mu_;  // Stop() may race with itself
  // Last: they start once the members above exist.
  std::thread committer_;
  std::thread responder_;
};

}  // namespace ferry::audit
