#pragma once

#include <cstdint>

#include "absl/time/time.h"
#include "common/concurrency/change_signal.h"

namespace ferry::repo_watcher {

// Wakes WatchRevisions streams when revisions are committed: in-process
// through Notify(), and from other replicas through PostgreSQL LISTEN on
// PostgresRepositoryStore::kRevisionChannel, which main.cc connects to
// signal() with a postgres::NotificationListener (this class links no
// PostgreSQL). A concurrency::ChangeSignal; the names below are kept for its
// callers. Thread-safe.
class RevisionNotifier {
 public:
  RevisionNotifier() = default;
  ~RevisionNotifier() { Shutdown(); }

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
  // Ends all waits for good.
  void Shutdown() { signal_.Cancel(); }

  // The signal a NotificationListener notifies on another replica's commit;
  // it must not outlive this notifier.
  concurrency::ChangeSignal* signal() { return &signal_; }

 private:
  concurrency::ChangeSignal signal_;
};

}  // namespace ferry::repo_watcher
