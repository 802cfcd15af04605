#pragma once

#include <algorithm>
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
  // A stream's wait after it has sent what there was: until the counter
  // moves past `seen` (a commit here, or another replica's NOTIFY), or
  // `cancelled()` (asked every kCancelCheck: the client left), or
  // kSafetyRead passes (the stream reads again even without a signal).
  // False once shut down. Issue #23: each open stream read the store every
  // 500 ms whether or not anything was committed, 360 of an idle
  // repo-watcher's 613 statements a minute.
  static constexpr absl::Duration kCancelCheck = absl::Milliseconds(500);
  static constexpr absl::Duration kSafetyRead = absl::Seconds(10);
  template <typename Cancelled>
  bool AwaitChange(uint64_t seen, const Cancelled& cancelled) {
    const absl::Time read_again = absl::Now() + kSafetyRead;
    while (true) {
      signal_.WaitForChange(seen, std::min(kCancelCheck, std::max(absl::ZeroDuration(), read_again - absl::Now())));
      if (signal_.cancelled()) return false;
      if (signal_.Version() != seen || cancelled() || absl::Now() >= read_again) return true;
    }
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
