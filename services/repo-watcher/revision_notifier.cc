#include "services/repo-watcher/revision_notifier.h"

#include "absl/time/clock.h"
#include "common/logging/logger.h"
#include "services/repo-watcher/postgres_repository_store.h"

namespace ferry::repo_watcher {
RevisionNotifier::RevisionNotifier(postgres::ConnectionPool* pool) {
  if (pool != nullptr) {
    listener_ = std::make_unique<postgres::NotificationListener>(pool, PostgresRepositoryStore::kRevisionChannel,
                                                                 [this] { Notify(); });
  }
}

RevisionNotifier::~RevisionNotifier() { Shutdown(); }

void RevisionNotifier::Start() {
  if (listener_ != nullptr) listener_->Start();
}

void RevisionNotifier::Notify() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++version_;
  }
  cv_.notify_all();
}

uint64_t RevisionNotifier::Version() {
  std::lock_guard<std::mutex> lock(mu_);
  return version_;
}

bool RevisionNotifier::WaitForChange(uint64_t seen, absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout), [&] { return shutdown_ || version_ != seen; });
  return !shutdown_;
}

void RevisionNotifier::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutdown_ = true;
  }
  cv_.notify_all();
  if (listener_ != nullptr) listener_->Stop();
}

}  // namespace ferry::repo_watcher
