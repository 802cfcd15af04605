#include "common/postgres/notification_listener.h"

#include <algorithm>

#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
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
    : pool_(pool),
      channel_(std::move(channel)),
      on_notify_(std::move(on_notify)),
      loop_(absl::StrCat("LISTEN ", channel_), [this] { return Listen(); },
            {.backoff = {.initial = absl::Milliseconds(100), .max = absl::Seconds(5)},
             .on_failure =
                 [this](const absl::Status& status, absl::Duration) {
                   logging::Warn("LISTEN connection cannot be opened; retrying",
                                 {{"channel", channel_}, {"error", status.ToString()}});
                 }}) {}

std::unique_ptr<NotificationListener> NotificationListener::ForSignal(ConnectionPool* pool, std::string channel,
                                                                      concurrency::ChangeSignal* signal) {
  return std::make_unique<NotificationListener>(pool, std::move(channel), [signal] { signal->Notify(); });
}

NotificationListener::~NotificationListener() { Stop(); }

void NotificationListener::Start() { loop_.Start(); }

void NotificationListener::Stop() {
  stop_.store(true);
  loop_.Stop();
}

absl::StatusOr<absl::Duration> NotificationListener::Listen() {
  absl::StatusOr<std::unique_ptr<pqxx::connection>> conn = pool_->OpenDedicated();
  if (!conn.ok()) return conn.status();  // backs off
  try {
    Receiver receiver(**conn, channel_, on_notify_);
    on_notify_();  // catch up on anything committed while not listening
    while (!stop_.load()) (*conn)->await_notification(0, 200000);
  } catch (const std::exception& e) {
    // It was open: reconnect soon, with the backoff reset.
    logging::Warn("LISTEN connection lost; reconnecting", {{"channel", channel_}, {"error", e.what()}});
    return absl::Milliseconds(100);
  }
  return absl::InfiniteDuration();  // stopped
}

}  // namespace ferry::postgres
