#include "services/repo-watcher/rejection_audit_limiter.h"

namespace ferry::repo_watcher {

std::optional<RejectionSummary> RejectionAuditLimiter::Record(const Rejection& rejection) {
  const absl::Time now = clock_->Now();
  MutexLock lock(&mu_);
  auto [it, fresh] = keys_.try_emplace({rejection.repository_id, rejection.result});
  Key& key = it->second;
  if (key.pending == 0) key.pending_since = now;
  ++key.pending;
  key.last = rejection;
  if (!fresh && now - key.last_audit < interval_) return std::nullopt;
  RejectionSummary summary{key.last, key.pending, key.pending_since};
  key.pending = 0;
  key.last_audit = now;
  return summary;
}

std::vector<RejectionSummary> RejectionAuditLimiter::TakeDue(bool all) {
  const absl::Time now = clock_->Now();
  std::vector<RejectionSummary> due;
  MutexLock lock(&mu_);
  for (auto it = keys_.begin(); it != keys_.end();) {
    Key& key = it->second;
    if (now - key.last_audit < interval_ && !(all && key.pending > 0)) {
      ++it;
      continue;
    }
    if (key.pending == 0) {  // quiet for a whole interval: the next one is audited at once
      it = keys_.erase(it);
      continue;
    }
    due.push_back(RejectionSummary{key.last, key.pending, key.pending_since});
    key.pending = 0;
    key.last_audit = now;
    ++it;
  }
  return due;
}

}  // namespace ferry::repo_watcher
