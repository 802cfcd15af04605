#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/concurrency/background_loop.h"
#include "common/concurrency/change_signal.h"
#include "common/postgres/connection_pool.h"

namespace ferry::postgres {

// Runs `LISTEN <channel>` on a dedicated connection in a background thread
// and calls `on_notify` for every NOTIFY on it, and once after each
// (re)connect, so that nothing committed while not listening is missed.
// A connection that cannot be opened is retried with backoff (100 ms
// doubling to 5 s); a lost one is reopened after 100 ms; each logged once.
// Runs on a concurrency::BackgroundLoop. Start/Stop from one thread;
// on_notify runs on the listener thread and must not block for long.
class NotificationListener {
 public:
  NotificationListener(ConnectionPool* pool, std::string channel, std::function<void()> on_notify);
  // A listener that calls signal->Notify() for every NOTIFY on `channel`
  // (and after each (re)connect). `signal` must outlive it. Not started.
  static std::unique_ptr<NotificationListener> ForSignal(ConnectionPool* pool, std::string channel,
                                                         concurrency::ChangeSignal* signal);
  ~NotificationListener();
  NotificationListener(const NotificationListener&) = delete;
  NotificationListener& operator=(const NotificationListener&) = delete;

  void Start();
  // Stops listening within about 200 ms. Idempotent.
  void Stop();

 private:
  // Opens a connection and listens until Stop() or the connection is lost.
  absl::StatusOr<absl::Duration> Listen();

  ConnectionPool* pool_;
  const std::string channel_;
  const std::function<void()> on_notify_;
  std::atomic<bool> stop_{false};
  concurrency::BackgroundLoop loop_;
};

}  // namespace ferry::postgres
