// CheckBatcher: uneventful check records written together (issue #23), over
// a store that records what it is asked to write.

#include "services/repo-watcher/check_batcher.h"

#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "common/concurrency/mutex.h"
#include "tests/repo-watcher/unused_repository_store.h"
#include "tests/support/fake_clock.h"

namespace ferry::repo_watcher {
namespace {

class BatchStore final : public UnusedRepositoryStore {
 public:
  BatchStore() : UnusedRepositoryStore("the batcher") {}
  absl::Status RecordChecks(const std::vector<CheckRecord>& records) override {
    MutexLock lock(&mu_);
    if (fail_) return absl::UnavailableError("database down");
    batches_.push_back(records);
    cv_.SignalAll();
    return absl::OkStatus();
  }
  void Fail(bool fail) {
    MutexLock lock(&mu_);
    fail_ = fail;
  }
  std::vector<std::vector<CheckRecord>> batches() {
    MutexLock lock(&mu_);
    return batches_;
  }
  bool AwaitBatches(size_t n) {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    MutexLock lock(&mu_);
    while (batches_.size() < n) {
      if (cv_.WaitWithDeadline(&mu_, deadline)) return batches_.size() >= n;
    }
    return true;
  }


 private:
  Mutex mu_;
  CondVar cv_;
  bool fail_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::vector<CheckRecord>> batches_ ABSL_GUARDED_BY(mu_);
};

CheckRecord At(const std::string& id, absl::Time t) { return {id, t, std::nullopt, "", 0, t + absl::Minutes(1)}; }

TEST(CheckBatcherTest, ManyChecksOneWriteTheNewestPerRepository) {
  BatchStore store;
  testing::FakeClock clock;
  const absl::Time t0 = clock.Now();
  CheckBatcher batcher(&store, &clock, absl::Seconds(1));
  for (int i = 0; i < 500; ++i) batcher.Add(At("r" + std::to_string(i), t0));
  batcher.Add(At("r7", t0 + absl::Seconds(3)));  // replaces the waiting one
  EXPECT_EQ(batcher.pending(), 500u);
  ASSERT_TRUE(batcher.Flush().ok());
  std::vector<std::vector<CheckRecord>> batches = store.batches();
  ASSERT_EQ(batches.size(), 1u);
  ASSERT_EQ(batches[0].size(), 500u);
  for (const CheckRecord& r : batches[0]) {
    EXPECT_EQ(r.check_time, r.repository_id == "r7" ? t0 + absl::Seconds(3) : t0) << r.repository_id;
  }
  EXPECT_EQ(batcher.pending(), 0u);
  ASSERT_TRUE(batcher.Flush().ok());  // nothing waiting: no write
  EXPECT_EQ(store.batches().size(), 1u);
}

TEST(CheckBatcherTest, AFailedWriteKeepsItsRecordsUnlessNewerOnesCame) {
  BatchStore store;
  testing::FakeClock clock;
  const absl::Time t0 = clock.Now();
  CheckBatcher batcher(&store, &clock, absl::Seconds(1));
  batcher.Add(At("a", t0));
  batcher.Add(At("b", t0));
  store.Fail(true);
  EXPECT_EQ(batcher.Flush().code(), absl::StatusCode::kUnavailable);
  batcher.Add(At("b", t0 + absl::Seconds(2)));
  store.Fail(false);
  ASSERT_TRUE(batcher.Flush().ok());
  std::vector<std::vector<CheckRecord>> batches = store.batches();
  ASSERT_EQ(batches.size(), 1u);
  ASSERT_EQ(batches[0].size(), 2u);
  EXPECT_EQ(batches[0][0].check_time, t0);
  EXPECT_EQ(batches[0][1].check_time, t0 + absl::Seconds(2));
}

TEST(CheckBatcherTest, WritesEveryIntervalAndWhatIsLeftOnStop) {
  BatchStore store;
  testing::FakeClock clock;
  const absl::Time t0 = clock.Now();
  CheckBatcher batcher(&store, &clock, absl::Seconds(1));
  batcher.Start();
  clock.AwaitSleeps(1);  // the first (empty) round is done
  batcher.Add(At("a", t0));
  clock.Advance(absl::Seconds(1));
  ASSERT_TRUE(store.AwaitBatches(1));
  batcher.Add(At("b", t0 + absl::Seconds(1)));
  batcher.Stop();  // before the next round: written on the way out
  std::vector<std::vector<CheckRecord>> batches = store.batches();
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[1][0].repository_id, "b");
}

}  // namespace
}  // namespace ferry::repo_watcher
