#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <memory>

#include "absl/time/time.h"
#include "common/postgres/connection_pool.h"
#include "common/postgres/notification_listener.h"

namespace ferry::repo_watcher {

// Wakes WatchRevisions streams when revisions are committed: in-process
// through Notify(), and from other replicas through PostgreSQL LISTEN on
// PostgresRepositoryStore::kRevisionChannel. Thread-safe.
class RevisionNotifier {
 public:
  explicit RevisionNotifier(postgres::ConnectionPool* pool = nullptr);
  ~RevisionNotifier();

  // Starts the LISTEN thread (no-op without a pool).
  void Start();
  // Wakes every waiter.
  void Notify();
  // The current change counter; pass it to WaitForChange.
  uint64_t Version();
  // Blocks until the counter moves past `seen`, `timeout` passes, or
  // Shutdown() is called. Returns false once shut down.
  bool WaitForChange(uint64_t seen, absl::Duration timeout);
  // Ends all waits for good and stops the LISTEN thread.
  void Shutdown();

 private:
  std::unique_ptr<postgres::NotificationListener> listener_;  // null without a pool
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t version_ = 0;
  bool shutdown_ = false;
};

}  // namespace ferry::repo_watcher
