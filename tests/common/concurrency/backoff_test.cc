#include "common/concurrency/backoff.h"

#include <gtest/gtest.h>

namespace ferry::concurrency {
namespace {

TEST(BackoffTest, DelayDoublesFromInitialAndStopsAtMax) {
  BackoffPolicy p{.initial = absl::Milliseconds(100), .max = absl::Seconds(1)};
  EXPECT_EQ(BackoffDelay(p, 0), absl::ZeroDuration());
  EXPECT_EQ(BackoffDelay(p, 1), absl::Milliseconds(100));
  EXPECT_EQ(BackoffDelay(p, 2), absl::Milliseconds(200));
  EXPECT_EQ(BackoffDelay(p, 3), absl::Milliseconds(400));
  EXPECT_EQ(BackoffDelay(p, 4), absl::Milliseconds(800));
  EXPECT_EQ(BackoffDelay(p, 5), absl::Seconds(1));
  EXPECT_EQ(BackoffDelay(p, 1'000'000), absl::Seconds(1));
}

TEST(BackoffTest, NextCountsFailuresAndResetStartsOver) {
  Backoff b({.initial = absl::Seconds(1), .max = absl::Seconds(5)});
  EXPECT_EQ(b.Next(), absl::Seconds(1));
  EXPECT_EQ(b.Next(), absl::Seconds(2));
  EXPECT_EQ(b.Next(), absl::Seconds(4));
  EXPECT_EQ(b.Next(), absl::Seconds(5));
  EXPECT_EQ(b.failures(), 4);
  b.Reset();
  EXPECT_EQ(b.failures(), 0);
  EXPECT_EQ(b.Next(), absl::Seconds(1));
}

TEST(BackoffTest, JitterStretchesEachDelayByUpToItsFraction) {
  double u = 0.5;
  Backoff b({.initial = absl::Seconds(1), .max = absl::Seconds(4), .jitter = 0.2}, [&] { return u; });
  EXPECT_EQ(b.Next(), absl::Milliseconds(1100));
  u = 0.0;
  EXPECT_EQ(b.Next(), absl::Seconds(2));
  u = 0.999;
  EXPECT_LT(b.Next(), absl::Milliseconds(4800));
  // Past the cap the jitter still applies, to the cap.
  u = 0.5;
  EXPECT_EQ(b.Next(), absl::Milliseconds(4400));
}

TEST(BackoffTest, RandomJitterStaysWithinBounds) {
  Backoff b({.initial = absl::Seconds(1), .max = absl::Seconds(1), .jitter = 0.5});
  for (int i = 0; i < 200; ++i) {
    absl::Duration d = b.Next();
    EXPECT_GE(d, absl::Seconds(1));
    EXPECT_LT(d, absl::Milliseconds(1500));
  }
}

}  // namespace
}  // namespace ferry::concurrency
