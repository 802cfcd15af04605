#include "services/deployer/plan_intake.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/concurrency/mutex.h"

namespace ferry::deployer {
namespace {

class Positions {
 public:
  void Advance(const std::string& p) {
    ferry::MutexLock lock(&mu_);
    seen_.push_back(p);
  }
  std::vector<std::string> seen() {
    ferry::MutexLock lock(&mu_);
    return seen_;
  }
  std::string last() {
    ferry::MutexLock lock(&mu_);
    return seen_.empty() ? "" : seen_.back();
  }

 private:
  ferry::Mutex mu_;
  std::vector<std::string> seen_ ABSL_GUARDED_BY(mu_);
};

TEST(PlanIntakeTest, OverlapsUpToTheLimitAndKeepsOneKeyInOrder) {
  Positions positions;
  PlanIntake intake(4, [&](const std::string& p) { positions.Advance(p); });
  std::atomic<int> running{0}, peak{0};
  // The hand-offs' bookkeeping (shared by the workers).
  struct Bookkeeping {
    ferry::Mutex mu;
    std::map<std::string, std::vector<int>> order ABSL_GUARDED_BY(mu);
    std::map<std::string, int> per_key_running ABSL_GUARDED_BY(mu);
    bool key_overlap ABSL_GUARDED_BY(mu) = false;
  } book;
  for (int i = 0; i < 40; ++i) {
    std::string key = absl::StrCat("app", i % 5);
    ASSERT_TRUE(intake.Submit(key, absl::StrCat(i + 1), [&, key, i] {
      {
        ferry::MutexLock lock(&book.mu);
        if (++book.per_key_running[key] > 1) book.key_overlap = true;
        book.order[key].push_back(i);
      }
      int now = ++running;
      for (int seen = peak.load(); now > seen && !peak.compare_exchange_weak(seen, now);) {
      }
      absl::SleepFor(absl::Milliseconds(5));
      --running;
      ferry::MutexLock lock(&book.mu);
      --book.per_key_running[key];
      return absl::OkStatus();
    }));
  }
  ASSERT_TRUE(intake.Drain().ok());
  EXPECT_LE(peak.load(), 4);
  EXPECT_GE(peak.load(), 2) << "hand-offs overlapped";
  ferry::MutexLock lock(&book.mu);
  EXPECT_FALSE(book.key_overlap) << "two hand-offs of one application ran at once";
  for (const auto& entry : book.order) {
    EXPECT_TRUE(std::is_sorted(entry.second.begin(), entry.second.end())) << entry.first;
  }
  EXPECT_EQ(positions.last(), "40");
  std::vector<std::string> seen = positions.seen();
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_LT(std::stoi(seen[i - 1]), std::stoi(seen[i]));
}

TEST(PlanIntakeTest, ThePositionNeverPassesAHandOffStillRunning) {
  Positions positions;
  PlanIntake intake(4, [&](const std::string& p) { positions.Advance(p); });
  absl::Notification release_first;
  ASSERT_TRUE(intake.Submit("a", "1", [&] {
    release_first.WaitForNotification();
    return absl::OkStatus();
  }));
  for (int i = 2; i <= 3; ++i) {
    ASSERT_TRUE(intake.Submit(absl::StrCat("k", i), absl::StrCat(i), [] { return absl::OkStatus(); }));
  }
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(positions.last(), "") << "2 and 3 finished, but 1 has not";
  release_first.Notify();
  ASSERT_TRUE(intake.Drain().ok());
  EXPECT_EQ(positions.last(), "3");
}

// Issue #23: while hand-offs still run, the position is advanced at most
// once an interval; the newest as soon as none runs.
TEST(PlanIntakeTest, WhileHandOffsRunThePositionAdvancesAtMostOnceAnIntervalAndAtOnceWhenNoneRuns) {
  Positions positions;
  PlanIntake intake(2, [&](const std::string& p) { positions.Advance(p); }, absl::Hours(1));
  std::map<std::string, absl::Notification> release;
  auto submit = [&](const std::string& p) {
    ASSERT_TRUE(intake.Submit(p, p, [&release, p] {
      release.at(p).WaitForNotification();
      return absl::OkStatus();
    }));
  };
  for (const char* p : {"a", "b", "c", "d", "e"}) release[p];  // made before any hand-off runs
  submit("a");
  submit("b");
  // Each Submit below waits for a slot: the hand-off released before it has finished.
  release["a"].Notify();
  submit("c");  // a finished with b running: the first advance
  release["b"].Notify();
  submit("d");  // b finished with c running, within the hour: not advanced yet
  release["c"].Notify();
  submit("e");
  EXPECT_EQ(positions.seen(), (std::vector<std::string>{"a"}));
  release["d"].Notify();
  release["e"].Notify();
  ASSERT_TRUE(intake.Drain().ok());
  // e finished last, with nothing running: advanced at once, to the newest.
  EXPECT_EQ(positions.seen(), (std::vector<std::string>{"a", "e"}));
}

TEST(PlanIntakeTest, AFailedHandOffStopsTheIntakeBeforeIt) {
  Positions positions;
  PlanIntake intake(2, [&](const std::string& p) { positions.Advance(p); });
  ASSERT_TRUE(intake.Submit("a", "1", [] { return absl::OkStatus(); }));
  ASSERT_TRUE(intake.Submit("b", "2", [] {
    absl::SleepFor(absl::Milliseconds(20));  // A slow planner call, or a busy machine.
    return absl::UnavailableError("planner down");
  }));
  intake.Submit("c", "3", [] { return absl::OkStatus(); });  // may already be refused
  // A later plan of the failed plan's application waits until that hand-off
  // has ended, so by then the failure is known: refused, whatever the timing
  // (a loop of other keys' plans could outrun a slow failing hand-off).
  EXPECT_FALSE(intake.Submit("b", "4", [] { return absl::OkStatus(); })) << "no new hand-off after a failure";
  EXPECT_FALSE(intake.Submit("k5", "5", [] { return absl::OkStatus(); })) << "no new hand-off after a failure";
  absl::Status drained = intake.Drain();
  EXPECT_EQ(drained, absl::UnavailableError("planner down"));
  EXPECT_EQ(positions.last(), "1") << "the failed plan is delivered again after a reconnect";
  // A new stream starts clean.
  ASSERT_TRUE(intake.Submit("a", "9", [] { return absl::OkStatus(); }));
  ASSERT_TRUE(intake.Drain().ok());
  EXPECT_EQ(positions.last(), "9");
}

// A hand-off that throws is a failed hand-off, not std::terminate (before
// RunGuarded the test binary aborted).
TEST(PlanIntakeTest, AThrowingHandOffIsAFailedHandOff) {
  Positions positions;
  PlanIntake intake(2, [&](const std::string& p) { positions.Advance(p); });
  ASSERT_TRUE(intake.Submit("a", "1", [] { return absl::OkStatus(); }));
  ASSERT_TRUE(intake.Submit("b", "2", []() -> absl::Status { throw std::runtime_error("hand-off blew up"); }));
  absl::Status drained = intake.Drain();
  EXPECT_EQ(drained.code(), absl::StatusCode::kInternal) << drained;
  EXPECT_NE(drained.message().find("hand-off blew up"), std::string::npos) << drained;
  EXPECT_EQ(positions.last(), "1");
}

}  // namespace
}  // namespace ferry::deployer
