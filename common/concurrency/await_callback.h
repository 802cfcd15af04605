#pragma once

#include <condition_variable>
#include <mutex>
#include <optional>
#include <utility>

namespace ferry::concurrency {

// Calls `start` with a one-shot callback taking a T, and blocks until that
// callback has been called, from any thread (possibly inside `start`).
// Returns the value it was given. For the blocking form of an asynchronous
// operation.
template <typename T, typename Start>
T AwaitCallback(Start&& start) {
  std::mutex mu;
  std::condition_variable called;
  std::optional<T> value;
  std::forward<Start>(start)([&](T v) {
    std::lock_guard<std::mutex> lock(mu);
    value.emplace(std::move(v));
    called.notify_one();
  });
  std::unique_lock<std::mutex> lock(mu);
  called.wait(lock, [&] { return value.has_value(); });
  return *std::move(value);
}

}  // namespace ferry::concurrency
