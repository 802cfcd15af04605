#pragma once

#include <cstdint>
#include <memory>

#include "absl/time/time.h"
#include "common/concurrency/change_signal.h"
#include "common/postgres/connection_pool.h"
#include "common/postgres/notification_listener.h"

namespace ferry::repo_watcher {

// Wakes WatchRevisions streams when revisions are committed: in-process
// through Notify(), and from other replicas through PostgreSQL LISTEN on
// PostgresRepositoryStore::kRevisionChannel. A concurrency::ChangeSignal
// connected to a NotificationListener; the names below are kept for its
// callers. Thread-safe.
class RevisionNotifier {
 public:
  explicit RevisionNotifier(postgres::ConnectionPool* pool = nullptr);
  ~RevisionNotifier();

  // Starts the LISTEN thread (no-op without a pool).
  void Start();
  // Wakes every waiter.
  void Notify() { signal_.Notify(); }
  // The current change counter; pass it to WaitForChange.
  uint64_t Version() const { return signal_.Version(); }
  // Blocks until the counter moves past `seen`, `timeout` passes, or
  // Shutdown() is called. Returns false once shut down.
  bool WaitForChange(uint64_t seen, absl::Duration timeout) {
    signal_.WaitForChange(seen, timeout);
    return !signal_.cancelled();
  }
  // Ends all waits for good and stops the LISTEN thread.
  void Shutdown();

 private:
  concurrency::ChangeSignal signal_;
  std::unique_ptr<postgres::NotificationListener> listener_;  // null without a pool; after signal_
};

}  // namespace ferry::repo_watcher
