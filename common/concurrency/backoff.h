#pragma once

#include <functional>

#include "absl/random/random.h"
#include "absl/time/time.h"

namespace ferry::concurrency {

// How long to wait after consecutive failures: `initial` after the first,
// multiplied by `factor` (doubling by default) after each further one, never
// more than `max`; then stretched by a random fraction in [0, jitter) so
// that many retriers spread out.
struct BackoffPolicy {
  absl::Duration initial = absl::Milliseconds(100);
  absl::Duration max = absl::Seconds(30);
  double jitter = 0.0;
  double factor = 2.0;
};

// The delay after `failures` consecutive failures (1 = the first), without
// jitter: initial * factor^(failures-1), capped at max. Zero for failures <= 0.
absl::Duration BackoffDelay(const BackoffPolicy& policy, int failures);

// Counts consecutive failures and hands out the delays of a BackoffPolicy,
// jitter included. Not thread-safe (one retrier owns one).
class Backoff {
 public:
  // `uniform01` returns a number in [0, 1) for the jitter; a random one when
  // empty (tests pass a fixed one).
  explicit Backoff(BackoffPolicy policy = {}, std::function<double()> uniform01 = nullptr);

  // Records a failure; returns how long to wait before the next attempt.
  absl::Duration Next();
  // Records a success: the next failure waits `initial` again.
  void Reset() { failures_ = 0; }
  int failures() const { return failures_; }
  const BackoffPolicy& policy() const { return policy_; }

 private:
  const BackoffPolicy policy_;
  std::function<double()> uniform01_;
  absl::BitGen gen_;
  int failures_ = 0;
};

}  // namespace ferry::concurrency
