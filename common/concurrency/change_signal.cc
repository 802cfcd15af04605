#include "common/concurrency/change_signal.h"

#include "absl/time/clock.h"

namespace ferry::concurrency {

uint64_t ChangeSignal::Version() const {
  MutexLock lock(&mu_);
  return version_;
}

void ChangeSignal::Notify() {
  MutexLock lock(&mu_);
  ++version_;
  changed_.SignalAll();
}

uint64_t ChangeSignal::WaitForChange(uint64_t seen, absl::Duration timeout) const {
  MutexLock lock(&mu_);
  const absl::Time deadline =
      timeout == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + timeout;
  while (!cancelled_ && version_ == seen) {
    if (changed_.WaitWithDeadline(&mu_, deadline)) break;
  }
  return version_;
}

void ChangeSignal::Cancel() {
  MutexLock lock(&mu_);
  cancelled_ = true;
  changed_.SignalAll();
}

bool ChangeSignal::cancelled() const {
  MutexLock lock(&mu_);
  return cancelled_;
}

}  // namespace ferry::concurrency
