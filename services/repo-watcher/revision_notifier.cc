#include "services/repo-watcher/revision_notifier.h"

#include <pqxx/notification>

#include "absl/time/clock.h"
#include "common/logging/logger.h"
#include "services/repo-watcher/postgres_repository_store.h"

namespace ferry::repo_watcher {
namespace {

class Receiver final : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& conn, RevisionNotifier* notifier)
      : pqxx::notification_receiver(conn, PostgresRepositoryStore::kRevisionChannel), notifier_(notifier) {}
  void operator()(const std::string&, int) override { notifier_->Notify(); }

 private:
  RevisionNotifier* notifier_;
};

}  // namespace

RevisionNotifier::~RevisionNotifier() { Shutdown(); }

void RevisionNotifier::Start() {
  if (pool_ == nullptr || listener_.joinable()) return;
  listener_ = std::thread([this] { Listen(); });
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
  stop_ = true;
  if (listener_.joinable()) listener_.join();
}

void RevisionNotifier::Listen() {
  absl::Duration backoff = absl::Milliseconds(100);
  while (!stop_) {
    absl::StatusOr<std::unique_ptr<pqxx::connection>> conn = pool_->OpenDedicated();
    if (!conn.ok()) {
      logging::Warn("revision listener cannot connect, retrying", {{"error", conn.status().ToString()}});
      absl::SleepFor(backoff);
      backoff = std::min(backoff * 2, absl::Seconds(5));
      continue;
    }
    try {
      Receiver receiver(**conn, this);
      backoff = absl::Milliseconds(100);
      Notify();  // catch up on anything committed while not listening
      while (!stop_) (*conn)->await_notification(0, 200000);
    } catch (const std::exception& e) {
      logging::Warn("revision listener lost its connection, reconnecting", {{"error", e.what()}});
      absl::SleepFor(backoff);
    }
  }
}

}  // namespace ferry::repo_watcher
