#include "services/planner/plan_version_cache.h"

#include <utility>


namespace ferry::planner {

PlanVersionCache::PlanVersionCache(size_t max_bytes, size_t max_entry_bytes, absl::Duration max_age,
                                   const Clock* clock)
    : max_bytes_(max_bytes), max_entry_bytes_(max_entry_bytes), max_age_(max_age), clock_(clock) {}

std::optional<PlanVersionCache::Entry> PlanVersionCache::Get(const std::string& id) {
  MutexLock lock(&mu_);
  TrimLocked(clock_->Now());
  auto it = slots_.find(id);
  if (it == slots_.end()) return std::nullopt;
  return it->second.entry;
}

void PlanVersionCache::Put(v1::Plan plan, std::string version) {
  const size_t size = plan.ByteSizeLong();
  const std::string id = plan.id();
  MutexLock lock(&mu_);
  if (auto it = slots_.find(id); it != slots_.end()) EraseLocked(it);
  if (!Keeps(size) || id.empty()) return;
  const absl::Time now = clock_->Now();
  order_.push_back(id);
  Slot& slot = slots_[id];
  slot.entry = Entry{std::move(plan), std::move(version)};
  slot.bytes = size;
  slot.kept = now;
  slot.order = std::prev(order_.end());
  bytes_ += size;
  TrimLocked(now);
}

void PlanVersionCache::Erase(const std::string& id) {
  MutexLock lock(&mu_);
  if (auto it = slots_.find(id); it != slots_.end()) EraseLocked(it);
}

size_t PlanVersionCache::size() const {
  MutexLock lock(&mu_);
  return slots_.size();
}

size_t PlanVersionCache::bytes() const {
  MutexLock lock(&mu_);
  return bytes_;
}

void PlanVersionCache::EraseLocked(std::map<std::string, Slot>::iterator it) {
  bytes_ -= it->second.bytes;
  order_.erase(it->second.order);
  slots_.erase(it);
}

void PlanVersionCache::TrimLocked(absl::Time now) {
  while (!order_.empty()) {
    auto oldest = slots_.find(order_.front());
    if (bytes_ <= max_bytes_ && now - oldest->second.kept <= max_age_) break;
    EraseLocked(oldest);
  }
}

}  // namespace ferry::planner
