#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include <prometheus/registry.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "common/concurrency/background_loop.h"
#include "common/outbox/audit_sink.h"
#include "common/outbox/outbox_store.h"
#include "common/postgres/connection_pool.h"

namespace ferry::outbox {

struct ForwarderOptions {
  int batch_size = 500;
  // A batch also ends before its serialized events pass this many bytes (a
  // single larger event goes alone): the audit service's gRPC receive limit
  // is 4 MiB (--outbox-max-batch-bytes).
  size_t max_batch_bytes = 1 << 20;
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(30);
  // Safety-net poll when no wake-up comes (this process's commits to the
  // outbox wake the loop; another process's events wait for this poll):
  // also how often an idle service refreshes ferry_outbox_backlog. Issue
  // #23: at 2 s, the four forwarders' reads were 240 of an idle stack's
  // 1,500 statements a minute.
  absl::Duration idle_poll = absl::Seconds(10);
  // Issue #23: while events keep coming, a round of the loop starts at
  // least this long after the last one that delivered events, so that the
  // events of many commits go in one batch (one read, one AppendBatch, one
  // mark) rather than a round per commit. After a quiet spell a round
  // starts at once.
  absl::Duration min_round_interval = absl::Milliseconds(25);
  // What the delivery loop waits on; the system clock when null.
  const WaitableClock* clock = nullptr;
};

// Delivers a service's outbox to the audit service, in order, with retries
// and exponential backoff, on a background thread. It wakes when a
// transaction of its pool that wrote to the outbox ends (PostgresOutboxStore
// calls ConnectionPool::WakeAfterCommit on its channel), so an event
// normally leaves within milliseconds of its transaction committing. Events
// another process wrote (another replica that stopped before delivering
// them) leave at the next idle poll. If the
// audit service is down, events wait in the outbox; nothing upstream blocks.
// Batches are capped by count and bytes. A batch the audit service refuses
// as too large (RESOURCE_EXHAUSTED) is halved and each half sent in order; a
// single event refused that way, or refused as invalid, is kept in the
// outbox with its error (marked sent, so it never blocks the events behind
// it) and logged as an error: it is dead-lettered, not retried.
// Exposes ferry_outbox_backlog{service} and
// ferry_outbox_delivered_total{service,result} (result ok, error or
// dead_letter). Thread-safe.
class OutboxForwarder {
 public:
  OutboxForwarder(std::string service, std::string notify_channel, OutboxStore* store, AuditSink* sink,
                  postgres::ConnectionPool* pool, prometheus::Registry* registry, ForwarderOptions options = {});
  ~OutboxForwarder();

  void Start();
  // Wakes the loop now, unless it is backing off after a failure (used after local enqueues when NOTIFY is unavailable).
  void Wake();
  // Stops the loop; undelivered events stay in the outbox for next time.
  // Idempotent.
  void Stop();

  // Delivers everything pending once, synchronously; for tests and shutdown.
  absl::Status DrainOnce() { return Drain(nullptr); }

 private:
  // One round of the delivery loop: drain, update the backlog gauge, then
  // wait idle_poll (or a wake).
  absl::StatusOr<absl::Duration> DeliverPending();
  // DrainOnce, adding the events delivered to `*delivered` (when not null).
  // A read that returns less than a batch, all of it delivered, ends it:
  // what commits after that read NOTIFYs and wakes the loop again.
  absl::Status Drain(size_t* delivered);
  // Sends `events` (outbox ids `ids`) in order, halving on RESOURCE_EXHAUSTED
  // and isolating refused events. OK once each is delivered or
  // dead-lettered; otherwise the retryable error.
  absl::Status Deliver(const std::vector<v1::Event>& events, const std::vector<int64_t>& ids);
  // Keeps one refused event out of the queue with its error.
  absl::Status DeadLetter(int64_t id, const v1::Event& event, const absl::Status& refusal);

  const std::string service_;
  const std::string channel_;
  OutboxStore* store_;
  AuditSink* sink_;
  postgres::ConnectionPool* pool_;
  const ForwarderOptions options_;
  prometheus::Gauge* backlog_;
  prometheus::Counter* delivered_ok_;
  prometheus::Counter* delivered_failed_;
  prometheus::Counter* dead_lettered_;

  std::atomic<int64_t> last_backlog_{-1};  // for the failure log; -1 when unknown
  // The delivery loop's own: when its last round that delivered events
  // ended, and what it waits on for min_round_interval.
  const WaitableClock* const clock_;
  std::unique_ptr<Alarm> spacing_;
  absl::Time last_delivery_ = absl::InfinitePast();
  concurrency::BackgroundLoop loop_;
  // The pool's local listener that wakes loop_ (0: none); see Start().
  std::atomic<postgres::ConnectionPool::LocalListenerId> listener_{0};
};

}  // namespace ferry::outbox
