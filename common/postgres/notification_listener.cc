#include "common/postgres/notification_listener.h"

#include <algorithm>

#include <pqxx/pqxx>

#include "absl/time/clock.h"
#include "common/concurrency/backoff.h"
#include "common/logging/logger.h"

namespace ferry::postgres {
namespace {

class Receiver final : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& conn, const std::string& channel, const std::function<void()>& on_notify)
      : pqxx::notification_receiver(conn, channel), on_notify_(on_notify) {}
  void operator()(const std::string&, int) override { on_notify_(); }

 private:
  const std::function<void()>& on_notify_;
};

}  // namespace

NotificationListener::NotificationListener(ConnectionPool* pool, std::string channel, std::function<void()> on_notify)
    : pool_(pool), channel_(std::move(channel)), on_notify_(std::move(on_notify)) {}

std::unique_ptr<NotificationListener> NotificationListener::ForSignal(ConnectionPool* pool, std::string channel,
                                                                      concurrency::ChangeSignal* signal) {
  return std::make_unique<NotificationListener>(pool, std::move(channel), [signal] { signal->Notify(); });
}

NotificationListener::~NotificationListener() { Stop(); }

void NotificationListener::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Run(); });
}

void NotificationListener::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void NotificationListener::Run() {
  concurrency::Backoff backoff({.initial = absl::Milliseconds(100), .max = absl::Seconds(5)});
  while (!stop_.load()) {
    absl::StatusOr<std::unique_ptr<pqxx::connection>> conn = pool_->OpenDedicated();
    if (!conn.ok()) {
      logging::Warn("LISTEN connection cannot be opened; retrying",
                    {{"channel", channel_}, {"error", conn.status().ToString()}});
      absl::SleepFor(backoff.Next());
      continue;
    }
    try {
      Receiver receiver(**conn, channel_, on_notify_);
      backoff.Reset();
      on_notify_();  // catch up on anything committed while not listening
      while (!stop_.load()) (*conn)->await_notification(0, 200000);
    } catch (const std::exception& e) {
      logging::Warn("LISTEN connection lost; reconnecting", {{"channel", channel_}, {"error", e.what()}});
      absl::SleepFor(backoff.Next());
    }
  }
}

}  // namespace ferry::postgres
