#include "common/concurrency/parallel_for.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace ferry::concurrency {
namespace {

TEST(ParallelForTest, RunsEveryIndexOnceWithAtMostTheGivenWorkers) {
  std::vector<std::atomic<int>> runs(100);
  std::atomic<int> running{0}, peak{0};
  absl::Status s = ParallelFor(runs.size(), 3, [&](size_t i) {
    int now = ++running;
    int seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ++runs[i];
    --running;
    return absl::OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s;
  for (auto& r : runs) EXPECT_EQ(r.load(), 1);
  EXPECT_LE(peak.load(), 3);
  EXPECT_GE(peak.load(), 2) << "work overlapped";
}

TEST(ParallelForTest, RunsTheRestAfterAFailureAndReturnsTheLowestFailingIndex) {
  std::atomic<int> ran{0};
  absl::Status s = ParallelFor(10, 4, [&](size_t i) {
    ++ran;
    if (i == 7) return absl::UnavailableError("seven");
    if (i == 3) return absl::InvalidArgumentError("three");
    return absl::OkStatus();
  });
  EXPECT_EQ(ran.load(), 10);
  EXPECT_EQ(s, absl::InvalidArgumentError("three"));
}

TEST(ParallelForTest, NothingToDo) {
  EXPECT_TRUE(ParallelFor(0, 4, [](size_t) { return absl::InternalError("never"); }).ok());
}

}  // namespace
}  // namespace ferry::concurrency
