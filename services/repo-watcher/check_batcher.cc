#include "services/repo-watcher/check_batcher.h"

#include <vector>

namespace ferry::repo_watcher {
namespace {

concurrency::LoopOptions RetryEvery(absl::Duration interval) {
  concurrency::LoopOptions options;
  options.backoff.initial = interval;
  options.backoff.max = absl::Seconds(30);
  return options;
}

}  // namespace

CheckBatcher::CheckBatcher(RepositoryStore* store, const WaitableClock* clock, absl::Duration interval)
    : store_(store),
      interval_(interval),
      loop_("check record batcher", [this] { return Step(); }, RetryEvery(interval), clock) {}

CheckBatcher::~CheckBatcher() { Stop(); }

void CheckBatcher::Start() { loop_.Start(); }

void CheckBatcher::Stop() {
  loop_.Stop();
  (void)Flush();
}

void CheckBatcher::Add(const CheckRecord& record) {
  MutexLock lock(&mu_);
  pending_.insert_or_assign(record.repository_id, record);
}

size_t CheckBatcher::pending() const {
  MutexLock lock(&mu_);
  return pending_.size();
}

absl::Status CheckBatcher::Flush() {
  MutexLock one_at_a_time(&flush_mu_);
  std::map<std::string, CheckRecord> batch;
  {
    MutexLock lock(&mu_);
    batch.swap(pending_);
  }
  if (batch.empty()) return absl::OkStatus();
  std::vector<CheckRecord> records;
  records.reserve(batch.size());
  for (auto& [id, record] : batch) records.push_back(std::move(record));
  absl::Status written = store_->RecordChecks(records);
  if (!written.ok()) {
    MutexLock lock(&mu_);
    for (CheckRecord& r : records) pending_.try_emplace(r.repository_id, std::move(r));  // newer ones win
  }
  return written;
}

absl::StatusOr<absl::Duration> CheckBatcher::Step() {
  absl::Status written = Flush();
  if (!written.ok()) return written;
  return interval_;
}

}  // namespace ferry::repo_watcher
