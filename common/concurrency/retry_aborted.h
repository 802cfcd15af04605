#pragma once

#include <type_traits>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace ferry::concurrency {

// Calls `attempt` (returning absl::Status or absl::StatusOr<T>) again while
// it fails with ABORTED (typically: what it read changed before its write,
// an optimistic-concurrency conflict), at most `attempts` times, sleeping a
// little longer after each conflict so that the other writer can finish.
// Returns the last result.
template <typename Attempt>
auto RetryWhileAborted(Attempt attempt, int attempts = 20) -> decltype(attempt()) {
  for (int i = 1;; ++i) {
    auto result = attempt();
    const absl::Status& status = [&]() -> const absl::Status& {
      if constexpr (std::is_same_v<decltype(result), absl::Status>) {
        return result;
      } else {
        return result.status();
      }
    }();
    if (!absl::IsAborted(status) || i >= attempts) return result;
    absl::SleepFor(absl::Microseconds(200) * i);
  }
}

}  // namespace ferry::concurrency
