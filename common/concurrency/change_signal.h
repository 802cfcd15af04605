#pragma once

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "common/concurrency/mutex.h"

namespace ferry::concurrency {

// A version counter that waiters block on: "something changed since version
// v". Notify() moves the version on and wakes every waiter; a waiter passes
// the version it last saw, so a change between reading the version and
// waiting is never lost. Cancel() ends every wait for good (shutdown).
// Thread-safe.
//
//   uint64_t seen = signal.Version();
//   ... read the state ...
//   seen = signal.WaitForChange(seen, absl::Seconds(1));
class ChangeSignal {
 public:
  ChangeSignal() = default;
  ChangeSignal(const ChangeSignal&) = delete;
  ChangeSignal& operator=(const ChangeSignal&) = delete;

  // The current version; starts at 0.
  uint64_t Version() const;
  // Moves the version on and wakes every waiter.
  void Notify();
  // Blocks until the version differs from `seen`, `timeout` passes, or the
  // signal is cancelled (at once when it already is). Returns the current
  // version.
  uint64_t WaitForChange(uint64_t seen, absl::Duration timeout) const;
  // Wakes every waiter for good; later waits return at once. Idempotent.
  void Cancel();
  bool cancelled() const;

 private:
  mutable Mutex mu_;
  mutable CondVar changed_;
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace ferry::concurrency
