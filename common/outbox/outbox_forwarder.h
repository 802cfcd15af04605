#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <prometheus/registry.h>

#include "absl/time/time.h"
#include "common/outbox/audit_sink.h"
#include "common/outbox/outbox_store.h"
#include "common/postgres/connection_pool.h"
#include "common/postgres/notification_listener.h"

namespace ferry::outbox {

struct ForwarderOptions {
  int batch_size = 500;
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(30);
  // Safety-net poll when no notification arrives.
  absl::Duration idle_poll = absl::Seconds(2);
};

// Delivers a service's outbox to the audit service, in order, with retries
// and exponential backoff, on a background thread. It wakes on the
// PostgreSQL NOTIFY sent by PostgresOutboxStore::Enqueue, so an event
// normally leaves within milliseconds of its transaction committing. If the
// audit service is down, events wait in the outbox; nothing upstream blocks.
// Exposes ferry_outbox_backlog{service} and
// ferry_outbox_delivered_total{service,result}. Thread-safe.
class OutboxForwarder {
 public:
  OutboxForwarder(std::string service, std::string notify_channel, OutboxStore* store, AuditSink* sink,
                  postgres::ConnectionPool* pool, prometheus::Registry* registry, ForwarderOptions options = {});
  ~OutboxForwarder();

  void Start();
  // Wakes the loop now (used after local enqueues when NOTIFY is unavailable).
  void Wake();
  // Stops the loop; undelivered events stay in the outbox for next time.
  void Stop();

  // Delivers everything pending once, synchronously; for tests and shutdown.
  absl::Status DrainOnce();

 private:
  void Run();

  const std::string service_;
  const std::string channel_;
  OutboxStore* store_;
  AuditSink* sink_;
  postgres::ConnectionPool* pool_;
  const ForwarderOptions options_;
  prometheus::Gauge* backlog_;
  prometheus::Counter* delivered_ok_;
  prometheus::Counter* delivered_failed_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool wake_ = false;
  std::atomic<bool> stop_{false};
  std::thread worker_;
  std::unique_ptr<postgres::NotificationListener> listener_;
};

}  // namespace ferry::outbox
