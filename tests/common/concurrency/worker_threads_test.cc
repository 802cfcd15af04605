// WorkerThreads: a job runs at once, on a thread that finished its job when
// one waits, never behind another job; waiting threads leave after their
// idle time and when joined.
#include "common/concurrency/worker_threads.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"

namespace ferry::concurrency {
namespace {

// Set by a job on the thread it ran on: a fresh thread sees 0.
thread_local int marker = 0;

// Runs `job` and waits until it has returned.
void RunAndWait(WorkerThreads& workers, std::function<void()> job) {
  auto done = std::make_shared<absl::Notification>();
  workers.Run([job = std::move(job), done] {
    job();
    done->Notify();
  });
  done->WaitForNotification();
}

TEST(WorkerThreadsTest, AThreadThatFinishedItsJobRunsTheNext) {
  WorkerThreads workers(absl::Hours(1));
  RunAndWait(workers, [] { marker = 1; });
  // Until the first thread waits again, a second job gets a new thread.
  int seen = 0;
  for (int i = 0; i < 200 && seen != 1; ++i) {
    absl::SleepFor(absl::Milliseconds(5));
    RunAndWait(workers, [&] { seen = marker; });
  }
  EXPECT_EQ(seen, 1) << "every job ran on a new thread";
}

TEST(WorkerThreadsTest, AJobNeverWaitsForAnother) {
  WorkerThreads workers(absl::Hours(1));
  RunAndWait(workers, [] {});
  absl::Notification second_ran;
  absl::Notification first_done;
  // The first waits for the second: queued behind it, neither would end.
  workers.Run([&] {
    second_ran.WaitForNotificationWithTimeout(absl::Seconds(30));
    first_done.Notify();
  });
  workers.Run([&] { second_ran.Notify(); });
  first_done.WaitForNotification();
  EXPECT_TRUE(second_ran.HasBeenNotified());
}

TEST(WorkerThreadsTest, AWaitingThreadLeavesAfterItsIdleTime) {
  WorkerThreads workers(absl::Milliseconds(10));
  RunAndWait(workers, [] { marker = 1; });
  int seen = 1;
  for (int i = 0; i < 100 && seen != 0; ++i) {
    absl::SleepFor(absl::Milliseconds(50));
    RunAndWait(workers, [&] {
      seen = marker;
      marker = 1;
    });
  }
  EXPECT_EQ(seen, 0) << "a waiting thread never left";
}

// With an idle time of an hour, Join (and the destructor) would hang if it
// did not end the waits; the job it waits for runs to its end first.
TEST(WorkerThreadsTest, JoinEndsTheWaitsAndWaitsForRunningJobs) {
  auto workers = std::make_unique<WorkerThreads>(absl::Hours(1));
  for (int i = 0; i < 4; ++i) RunAndWait(*workers, [] {});
  std::atomic<bool> finished{false};
  workers->Run([&] {
    absl::SleepFor(absl::Milliseconds(50));
    finished = true;
  });
  workers->Join();
  EXPECT_TRUE(finished.load());
  RunAndWait(*workers, [] {});  // usable again
  workers.reset();
}

}  // namespace
}  // namespace ferry::concurrency
