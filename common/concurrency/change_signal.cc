#include "common/concurrency/change_signal.h"

namespace ferry::concurrency {

uint64_t ChangeSignal::Version() const {
  absl::MutexLock lock(&mu_);
  return version_;
}

void ChangeSignal::Notify() {
  absl::MutexLock lock(&mu_);
  ++version_;
}

uint64_t ChangeSignal::WaitForChange(uint64_t seen, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto changed = [this, seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return cancelled_ || version_ != seen; };
  mu_.AwaitWithTimeout(absl::Condition(&changed), timeout);
  return version_;
}

void ChangeSignal::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
}

bool ChangeSignal::cancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

}  // namespace ferry::concurrency
