#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/concurrency/change_signal.h"
#include "common/postgres/connection_pool.h"

namespace ferry::postgres {

// Runs `LISTEN <channel>` on a dedicated connection in a background thread
// and calls `on_notify` for every NOTIFY on it, and once after each
// (re)connect, so that nothing committed while not listening is missed.
// A lost connection is reopened with backoff (100 ms doubling to 5 s), each
// loss logged once. Start/Stop from one thread; on_notify runs on the
// listener thread and must not block for long.
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
  void Run();

  ConnectionPool* pool_;
  const std::string channel_;
  const std::function<void()> on_notify_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace ferry::postgres
