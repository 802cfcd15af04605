#include "common/concurrency/group_runner.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"

namespace ferry::concurrency {
namespace {

TEST(GroupRunnerTest, ACallerAloneRunsOnceAndGetsTheStatus) {
  int runs = 0;
  GroupRunner runner([&] {
    ++runs;
    return absl::UnavailableError("down");
  });
  EXPECT_TRUE(absl::IsUnavailable(runner.Run()));
  EXPECT_EQ(runs, 1);
  EXPECT_TRUE(absl::IsUnavailable(runner.Run()));
  EXPECT_EQ(runs, 2);
}

// A caller that arrives while a run is in progress must not be served by
// that run (it may have read the state before the caller's work): it gets
// the next one, which sees its work.
TEST(GroupRunnerTest, ACallerArrivingDuringARunIsServedByTheNextRun) {
  std::atomic<int> work{0};
  std::vector<int> seen_by_run;
  absl::Notification first_started, let_first_finish;
  GroupRunner runner([&] {
    seen_by_run.push_back(work.load());
    if (seen_by_run.size() == 1) {
      first_started.Notify();
      let_first_finish.WaitForNotification();
    }
    return absl::OkStatus();
  });
  std::thread first([&] { EXPECT_TRUE(runner.Run().ok()); });
  first_started.WaitForNotification();
  std::atomic<bool> calling{false};
  std::thread second([&] {
    work = 1;  // the caller's work, done after the first run read the state
    calling = true;
    EXPECT_TRUE(runner.Run().ok());
  });
  while (!calling) std::this_thread::yield();
  // Makes it likely (not required: the expectation holds either way) that
  // the second caller is already waiting on the first run when it ends.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  let_first_finish.Notify();
  first.join();
  second.join();
  ASSERT_EQ(seen_by_run.size(), 2u);
  EXPECT_EQ(seen_by_run[0], 0);
  EXPECT_EQ(seen_by_run[1], 1) << "the second caller returned only after a run that saw its work";
}

TEST(GroupRunnerTest, ManyConcurrentCallersShareRunsAndEverySeesItsWork) {
  constexpr int kCallers = 64;
  std::atomic<int> done_work{0};
  std::atomic<int> runs{0};
  std::vector<std::atomic<bool>> covered(kCallers);
  std::vector<std::atomic<bool>> ready(kCallers);
  GroupRunner runner([&] {
    ++runs;
    for (int i = 0; i < kCallers; ++i)
      if (ready[i]) covered[i] = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a commit's worth of time
    return absl::OkStatus();
  });
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int i = 0; i < kCallers; ++i) {
    threads.emplace_back([&, i] {
      ready[i] = true;
      EXPECT_TRUE(runner.Run().ok());
      if (!covered[i]) ++wrong;
      ++done_work;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(done_work, kCallers);
  EXPECT_EQ(wrong, 0) << "a caller returned before any run had seen its work";
  EXPECT_LE(runs.load(), kCallers);
  EXPECT_EQ(runner.runs(), static_cast<uint64_t>(runs.load()));
}

TEST(GroupRunnerTest, ARunThatThrowsFailsThatRunOnlyAndLaterRunsProceed) {
  int calls = 0;
  GroupRunner runner([&]() -> absl::Status {
    if (++calls == 1) throw std::runtime_error("boom");
    return absl::OkStatus();
  });
  absl::Status first = runner.Run();
  EXPECT_TRUE(absl::IsInternal(first)) << first;
  EXPECT_NE(first.message().find("boom"), std::string::npos);
  EXPECT_TRUE(runner.Run().ok());
  EXPECT_EQ(calls, 2);
}

}  // namespace
}  // namespace ferry::concurrency
