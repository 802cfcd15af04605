#include "common/concurrency/batcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/concurrency/mutex.h"

namespace ferry::concurrency {
namespace {

// Records each batch's requests; the first batch waits for `release_first`
// so that later callers queue behind it.
class Recorder {
 public:
  std::vector<absl::StatusOr<std::string>> Run(std::vector<std::string*>& batch) {
    std::vector<absl::StatusOr<std::string>> out;
    {
      MutexLock lock(&mu_);
      batches_.emplace_back();
      for (std::string* r : batch) {
        batches_.back().push_back(*r);
        out.push_back("answer to " + *r);
      }
    }
    if (first_.exchange(false)) {
      first_started.Notify();
      release_first.WaitForNotification();
    }
    return out;
  }
  std::vector<std::vector<std::string>> batches() const {
    MutexLock lock(&mu_);
    return batches_;
  }

  absl::Notification first_started, release_first;

 private:
  std::atomic<bool> first_{true};
  mutable Mutex mu_;
  std::vector<std::vector<std::string>> batches_ ABSL_GUARDED_BY(mu_);
};

void WaitUntilQueued(const Batcher<std::string, absl::StatusOr<std::string>>& batcher, size_t n) {
  for (int i = 0; i < 5000 && batcher.queued() < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ(batcher.queued(), n);
}

TEST(BatcherTest, ACallerAloneRunsAtOnceInABatchOfOne) {
  Recorder rec;
  rec.release_first.Notify();
  Batcher<std::string, absl::StatusOr<std::string>> batcher(8, [&](std::vector<std::string*>& b) { return rec.Run(b); });
  EXPECT_EQ(*batcher.Run("a", "a"), "answer to a");
  EXPECT_EQ(*batcher.Run("b", "b"), "answer to b");
  EXPECT_EQ(rec.batches(), (std::vector<std::vector<std::string>>{{"a"}, {"b"}}));
  EXPECT_EQ(batcher.batches(), 2u);
  EXPECT_EQ(batcher.requests_batched(), 0u);
}

TEST(BatcherTest, CallersArrivingDuringABatchAreServedTogetherEachWithItsOwnAnswer) {
  Recorder rec;
  Batcher<std::string, absl::StatusOr<std::string>> batcher(64, [&](std::vector<std::string*>& b) { return rec.Run(b); });
  absl::StatusOr<std::string> first_answer;
  std::thread first([&] { first_answer = batcher.Run("first", "k-first"); });
  rec.first_started.WaitForNotification();
  constexpr int kCallers = 10;
  std::vector<absl::StatusOr<std::string>> answers(kCallers);
  std::vector<std::thread> callers;
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back([&, i] { answers[i] = batcher.Run(absl::StrCat("r", i), absl::StrCat("k", i)); });
  }
  WaitUntilQueued(batcher, kCallers);
  rec.release_first.Notify();
  first.join();
  for (auto& t : callers) t.join();
  EXPECT_EQ(*first_answer, "answer to first");
  for (int i = 0; i < kCallers; ++i) EXPECT_EQ(*answers[i], absl::StrCat("answer to r", i));
  std::vector<std::vector<std::string>> batches = rec.batches();
  ASSERT_EQ(batches.size(), 2u) << "the ten who came during the first batch ran in one";
  EXPECT_EQ(batches[1].size(), static_cast<size_t>(kCallers));
  EXPECT_EQ(batcher.requests_batched(), static_cast<uint64_t>(kCallers));
}

TEST(BatcherTest, RequestsOfOneKeyRunInLaterBatchesInTheOrderTheyCame) {
  Recorder rec;
  Batcher<std::string, absl::StatusOr<std::string>> batcher(64, [&](std::vector<std::string*>& b) { return rec.Run(b); });
  std::thread first([&] { (void)batcher.Run("first", "x"); });
  rec.first_started.WaitForNotification();
  // Queued one at a time so that their order is known.
  std::vector<std::thread> callers;
  const std::vector<std::pair<std::string, std::string>> requests = {
      {"x1", "x"}, {"y1", "y"}, {"x2", "x"}, {"z1", "z"}, {"x3", "x"}};
  for (size_t i = 0; i < requests.size(); ++i) {
    callers.emplace_back([&, i] { (void)batcher.Run(requests[i].first, requests[i].second); });
    WaitUntilQueued(batcher, i + 1);
  }
  rec.release_first.Notify();
  first.join();
  for (auto& t : callers) t.join();
  EXPECT_EQ(rec.batches(), (std::vector<std::vector<std::string>>{{"first"}, {"x1", "y1", "z1"}, {"x2"}, {"x3"}}));
}

TEST(BatcherTest, ABatchHoldsAtMostItsLimit) {
  Recorder rec;
  Batcher<std::string, absl::StatusOr<std::string>> batcher(3, [&](std::vector<std::string*>& b) { return rec.Run(b); });
  std::thread first([&] { (void)batcher.Run("first", "first"); });
  rec.first_started.WaitForNotification();
  std::vector<std::thread> callers;
  for (int i = 0; i < 7; ++i) {
    callers.emplace_back([&, i] { (void)batcher.Run(absl::StrCat("r", i), absl::StrCat("k", i)); });
    WaitUntilQueued(batcher, i + 1);
  }
  rec.release_first.Notify();
  first.join();
  for (auto& t : callers) t.join();
  std::vector<std::vector<std::string>> batches = rec.batches();
  ASSERT_EQ(batches.size(), 4u);
  EXPECT_EQ(batches[1], (std::vector<std::string>{"r0", "r1", "r2"}));
  EXPECT_EQ(batches[2], (std::vector<std::string>{"r3", "r4", "r5"}));
  EXPECT_EQ(batches[3], (std::vector<std::string>{"r6"}));
}

// A run that throws, or answers for fewer requests than it got, fails every
// request of its batch (INTERNAL) instead of an exception on the caller's
// thread, and the batcher serves the next batch.
TEST(BatcherTest, ARunThatThrowsOrMiscountsFailsItsBatchAndTheNextRuns) {
  int calls = 0;
  Batcher<std::string, absl::StatusOr<std::string>> batcher(8, [&](std::vector<std::string*>& b) {
    ++calls;
    if (calls == 1) throw std::runtime_error("boom");
    std::vector<absl::StatusOr<std::string>> out;
    if (calls == 2) return out;  // none for one request
    for (std::string* r : b) out.push_back("answer to " + *r);
    return out;
  });
  absl::StatusOr<std::string> thrown = batcher.Run("a", "a");
  EXPECT_EQ(thrown.status().code(), absl::StatusCode::kInternal) << thrown.status();
  absl::StatusOr<std::string> miscounted = batcher.Run("b", "b");
  EXPECT_EQ(miscounted.status().code(), absl::StatusCode::kInternal) << miscounted.status();
  EXPECT_NE(miscounted.status().message().find("1 requests returned 0 results"), std::string::npos)
      << miscounted.status();
  absl::StatusOr<std::string> fine = batcher.Run("c", "c");
  ASSERT_TRUE(fine.ok()) << fine.status();
  EXPECT_EQ(*fine, "answer to c");
}

}  // namespace
}  // namespace ferry::concurrency
