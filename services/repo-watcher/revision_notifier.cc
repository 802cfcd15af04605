#include "services/repo-watcher/revision_notifier.h"

#include "services/repo-watcher/postgres_repository_store.h"

namespace ferry::repo_watcher {

RevisionNotifier::RevisionNotifier(postgres::ConnectionPool* pool) {
  if (pool != nullptr) {
    listener_ = postgres::NotificationListener::ForSignal(pool, PostgresRepositoryStore::kRevisionChannel, &signal_);
  }
}

RevisionNotifier::~RevisionNotifier() { Shutdown(); }

void RevisionNotifier::Start() {
  if (listener_ != nullptr) listener_->Start();
}

void RevisionNotifier::Shutdown() {
  signal_.Cancel();
  if (listener_ != nullptr) listener_->Stop();
}

}  // namespace ferry::repo_watcher
