#include "common/concurrency/backoff.h"

#include <algorithm>
#include <utility>

namespace ferry::concurrency {

absl::Duration BackoffDelay(const BackoffPolicy& policy, int failures) {
  if (failures <= 0) return absl::ZeroDuration();
  absl::Duration delay = policy.initial;
  for (int i = 1; i < failures && delay < policy.max; ++i) delay *= policy.factor;
  return std::min(delay, policy.max);
}

Backoff::Backoff(BackoffPolicy policy, std::function<double()> uniform01)
    : policy_(policy), uniform01_(std::move(uniform01)) {}

absl::Duration Backoff::Next() {
  if (failures_ < 1'000'000) ++failures_;
  absl::Duration delay = BackoffDelay(policy_, failures_);
  if (policy_.jitter > 0) {
    const double u = uniform01_ ? uniform01_() : absl::Uniform<double>(gen_, 0.0, 1.0);
    delay += delay * (u * policy_.jitter);
  }
  return delay;
}

}  // namespace ferry::concurrency
