#include "common/concurrency/group_runner.h"

#include <utility>

#include "common/concurrency/last_resort.h"

namespace ferry::concurrency {

GroupRunner::GroupRunner(std::function<absl::Status()> run) : run_(std::move(run)) {}

absl::Status GroupRunner::Run() {
  MutexLock lock(&mu_);
  // A run in progress may have read the state before this caller's work:
  // only the next one to start counts.
  const uint64_t needed = started_ + 1;
  while (finished_ < needed) {
    if (running_) {
      finished_cv_.Wait(&mu_);
      continue;
    }
    running_ = true;
    const uint64_t mine = ++started_;
    mu_.Unlock();
    // An exception would leave running_ set and every later caller waiting
    // for good: it is this run's failure instead.
    absl::Status status = RunGuarded("group run", run_);
    mu_.Lock();
    running_ = false;
    finished_ = mine;
    last_ = std::move(status);
    finished_cv_.SignalAll();
  }
  return last_;
}

uint64_t GroupRunner::runs() const {
  MutexLock lock(&mu_);
  return started_;
}

}  // namespace ferry::concurrency
