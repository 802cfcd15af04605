#include "services/deployer/plan_intake.h"

#include <algorithm>
#include <utility>

#include "common/concurrency/last_resort.h"

namespace ferry::deployer {

PlanIntake::PlanIntake(int limit, std::function<void(const std::string& position)> advance,
                       absl::Duration min_advance_interval)
    : limit_(std::max(1, limit)), advance_(std::move(advance)), min_advance_interval_(min_advance_interval) {}

PlanIntake::~PlanIntake() { Drain().IgnoreError(); }

bool PlanIntake::Submit(const std::string& key, const std::string& position, std::function<absl::Status()> handoff) {
  ferry::MutexLock lock(&mu_);
  while (failure_.ok() && (running_ >= limit_ || busy_keys_.count(key) > 0)) cv_.Wait(&mu_);
  if (!failure_.ok()) return false;
  const uint64_t index = next_index_++;
  window_.push_back(Slot{position, false});
  busy_keys_.insert(key);
  ++running_;
  // A hand-off that throws is a failed hand-off (RunGuarded), not std::terminate.
  workers_.Run([this, index, key, handoff = std::move(handoff)]() mutable {
    absl::Status status = concurrency::RunGuarded("plan hand-off " + key, handoff);
    handoff = nullptr;  // What it captured goes before Drain() can return.
    Finish(index, key, std::move(status));
  });
  return true;
}

void PlanIntake::Finish(uint64_t index, const std::string& key, absl::Status status) {
  ferry::MutexLock lock(&mu_);
  if (status.ok()) {
    window_[index - first_index_].done = true;
  } else if (failure_.ok()) {
    failure_ = std::move(status);
  }
  busy_keys_.erase(key);
  --running_;
  AdvanceLocked();
  cv_.SignalAll();
}

void PlanIntake::AdvanceLocked() {
  // One thread advances at a time; it loops while others finish meanwhile.
  if (advancing_) return;
  advancing_ = true;
  for (;;) {
    while (!window_.empty() && window_.front().done) {
      unadvanced_ = std::move(window_.front().position);
      window_.pop_front();
      ++first_index_;
    }
    if (unadvanced_.empty()) break;
    // A hand-off still running advances later, when it finishes.
    const absl::Time now = absl::Now();
    if (running_ > 0 && now - last_advance_ < min_advance_interval_) break;
    last_advance_ = now;
    std::string position = std::move(unadvanced_);
    unadvanced_.clear();
    mu_.Unlock();
    advance_(position);
    mu_.Lock();
  }
  advancing_ = false;
  cv_.SignalAll();
}

absl::Status PlanIntake::Drain() {
  ferry::MutexLock lock(&mu_);
  while (running_ != 0 || advancing_) cv_.Wait(&mu_);
  absl::Status failure = std::move(failure_);
  failure_ = absl::OkStatus();
  window_.clear();
  first_index_ = next_index_;
  return failure;
}

}  // namespace ferry::deployer
