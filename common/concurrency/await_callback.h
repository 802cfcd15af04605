#pragma once

#include <optional>
#include <utility>

#include "common/concurrency/mutex.h"

namespace ferry::concurrency {

// Calls `start` with a one-shot callback taking a T, and blocks until that
// callback has been called, from any thread (possibly inside `start`).
// Returns the value it was given. For the blocking form of an asynchronous
// operation.
template <typename T, typename Start>
T AwaitCallback(Start&& start) {
  Mutex mu;
  CondVar called;
  std::optional<T> value;  // under mu
  std::forward<Start>(start)([&](T v) {
    MutexLock lock(&mu);
    value.emplace(std::move(v));
    called.Signal();
  });
  MutexLock lock(&mu);
  while (!value.has_value()) called.Wait(&mu);
  return *std::move(value);
}

}  // namespace ferry::concurrency
