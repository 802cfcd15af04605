// The poll scheduler over a fake poller and a fake clock: every repository
// is checked once per interval, never before it is due, never two at once,
// and none is lost (issue #23: it keeps the repositories waiting for their
// next check in an index by due time, instead of scanning all of them after
// every poll).

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "common/concurrency/mutex.h"
#include "services/repo-watcher/poll_scheduler.h"
#include "tests/repo-watcher/unused_repository_store.h"
#include "tests/support/fake_clock.h"

namespace ferry::repo_watcher {
namespace {

constexpr absl::Duration kInterval = absl::Seconds(60);

// Only what the scheduler reads: the ids of the repositories.
class ListStore final : public UnusedRepositoryStore {
 public:
  ListStore() : UnusedRepositoryStore("the scheduler") {}
  void Add(const std::string& id) {
    MutexLock lock(&mu_);
    ids_.insert(id);
  }
  void Remove(const std::string& id) {
    MutexLock lock(&mu_);
    ids_.erase(id);
  }
  // Ids only: the scheduler never reads the records (List is unused here
  // and fails, so a rescan reading them finds no repository).
  absl::StatusOr<std::vector<std::string>> ListIds(const std::string& after, int limit) override {
    MutexLock lock(&mu_);
    std::vector<std::string> out;
    for (auto it = ids_.upper_bound(after); it != ids_.end() && static_cast<int>(out.size()) < limit; ++it) {
      out.push_back(*it);
    }
    return out;
  }

 private:
  Mutex mu_;
  std::set<std::string> ids_ ABSL_GUARDED_BY(mu_);
};

// Records each poll (when, by the fake clock; scheduled or asked for) and
// asks for the next one an interval later.
class RecordingPoller final : public RepositoryPoller {
 public:
  explicit RecordingPoller(const Clock* clock) : clock_(clock) {}

  struct Check {
    absl::Time at;
    bool scheduled;
  };

  PollResult Poll(const std::string& id, const std::set<std::string>*, bool scheduled) override {
    absl::Time now = clock_->Now();
    {
      MutexLock lock(&mu_);
      if (++running_[id] > 1) overlapped_.insert(id);
      polls_[id].push_back({now, scheduled});
      ++total_;
    }
    {
      MutexLock lock(&mu_);
      --running_[id];
      cv_.SignalAll();
    }
    PollResult r;
    r.next_check = now + kInterval;
    return r;
  }
  absl::Duration NextDelay(absl::Duration interval, int) const override { return interval; }
  void Prefetch(const std::vector<std::string>& ids) override {
    MutexLock lock(&mu_);
    prefetches_.push_back(ids);
  }
  std::vector<std::vector<std::string>> prefetches() {
    MutexLock lock(&mu_);
    return prefetches_;
  }

  // Waits (really, up to `timeout`) until `n` polls have finished in all.
  bool AwaitTotal(int n, absl::Duration timeout = absl::Seconds(60)) {
    const absl::Time deadline = absl::Now() + timeout;
    MutexLock lock(&mu_);
    while (total_ < n) {
      if (cv_.WaitWithDeadline(&mu_, deadline)) return total_ >= n;
    }
    return true;
  }
  std::map<std::string, std::vector<Check>> polls() {
    MutexLock lock(&mu_);
    return polls_;
  }
  std::set<std::string> overlapped() {
    MutexLock lock(&mu_);
    return overlapped_;
  }

 private:
  const Clock* clock_;
  Mutex mu_;
  CondVar cv_;
  std::map<std::string, int> running_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<Check>> polls_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> overlapped_ ABSL_GUARDED_BY(mu_);
  int total_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::vector<std::string>> prefetches_ ABSL_GUARDED_BY(mu_);
};

std::string Id(int i) { return absl::StrFormat("r%05d", i); }

TEST(PollSchedulerTest, EveryRepositoryIsCheckedOncePerIntervalNeverEarlyAndNoneIsLost) {
  constexpr int kRepos = 2000;
  testing::FakeClock clock;
  const absl::Time t0 = clock.Now();
  ListStore store;
  for (int i = 0; i < kRepos; ++i) store.Add(Id(i));
  RecordingPoller poller(&clock);
  PollScheduler scheduler(&store, &poller, &clock,
                          {.workers = 3, .rescan_interval = absl::Seconds(2), .first_check_spread = absl::Seconds(1)});
  scheduler.Start();

  // The first checks, spread over the first second after the first scan.
  clock.AwaitSleeps(1);  // the dispatcher has scanned and waits for the first
  clock.Advance(absl::Seconds(1));
  ASSERT_TRUE(poller.AwaitTotal(kRepos));
  // One asked for now; one deleted; one registered (found by the rescan).
  scheduler.Trigger(Id(3));
  ASSERT_TRUE(poller.AwaitTotal(kRepos + 1));
  store.Remove(Id(7));
  scheduler.Forget(Id(7));
  store.Add("late");

  // The late one is found by the next rescan (every 2 s) and checked
  // within the start-up spread after it; nothing else is due yet.
  bool late_checked = false;
  for (int step = 0; step < 50 && !late_checked; ++step) {
    clock.Advance(absl::Seconds(1));
    late_checked = poller.AwaitTotal(kRepos + 2, absl::Seconds(1));
  }
  ASSERT_TRUE(late_checked);
  ASSERT_LT(clock.Now(), t0 + kInterval);
  // The interval is up for the first ones: each is checked again, once
  // (Id(7) is gone; Id(3), triggered at t0 + 1 s, is due with the others).
  clock.Set(t0 + absl::Seconds(1) + kInterval);
  ASSERT_TRUE(poller.AwaitTotal(2 * kRepos + 1));
  scheduler.Stop();

  std::map<std::string, std::vector<RecordingPoller::Check>> polls = poller.polls();
  EXPECT_TRUE(poller.overlapped().empty());
  EXPECT_EQ(polls.size(), static_cast<size_t>(kRepos + 1));
  int total = 0;
  for (const auto& [id, list] : polls) {
    total += static_cast<int>(list.size());
    size_t want = id == Id(7) ? 1u : id == Id(3) ? 3u : id == "late" ? 1u : 2u;
    if (id == "late") {
      // Found by a rescan after t0 + 1 s, checked within the spread, not
      // again before its interval.
      ASSERT_EQ(list.size(), 1u);
      EXPECT_GT(list[0].at, t0 + absl::Seconds(1));
      continue;
    }
    ASSERT_EQ(list.size(), want) << id;
    EXPECT_LE(list[0].at, t0 + absl::Seconds(1)) << id;
    EXPECT_TRUE(list[0].scheduled) << id;
    for (size_t k = 1; k < list.size(); ++k) {
      if (!list[k].scheduled) continue;  // the trigger runs at once
      // Never before the interval since the check before it.
      EXPECT_GE(list[k].at - list[k - 1].at, kInterval) << id << " check " << k;
    }
  }
  EXPECT_EQ(total, 2 * kRepos + 1);
  EXPECT_FALSE(polls[Id(3)][1].scheduled);  // the trigger is not a scheduled check
}

// Issue #23: each scheduled check read its repository in a statement of its
// own, 167 a second for 10,000 repositories at a 60 s interval. With a
// batch window, the checks falling due within it are dispatched together,
// after the poller has read them in one go, and still never early.
TEST(PollSchedulerTest, ChecksFallingDueWithinTheBatchWindowAreReadTogether) {
  constexpr int kRepos = 300;
  testing::FakeClock clock;
  const absl::Time t0 = clock.Now();
  ListStore store;
  for (int i = 0; i < kRepos; ++i) store.Add(Id(i));
  RecordingPoller poller(&clock);
  PollScheduler scheduler(&store, &poller, &clock,
                          {.workers = 3,
                           .rescan_interval = absl::Minutes(10),
                           .first_check_spread = absl::Seconds(1),
                           .batch_window = absl::Seconds(1)});
  scheduler.Start();
  clock.AwaitSleeps(1);  // scanned; the first checks are due within 1 s
  clock.Advance(absl::Seconds(2));
  ASSERT_TRUE(poller.AwaitTotal(kRepos));
  // Due again an interval after the first checks (all at t0 + 2 s + the
  // interval), and past the window.
  clock.Set(t0 + absl::Seconds(3) + kInterval);
  ASSERT_TRUE(poller.AwaitTotal(2 * kRepos));
  scheduler.Stop();

  std::vector<std::vector<std::string>> batches = poller.prefetches();
  ASSERT_FALSE(batches.empty()) << "no check was read ahead";
  EXPECT_LE(batches.size(), 4u) << "checks due within a second were read one by one";
  std::map<std::string, int> read;
  for (const std::vector<std::string>& b : batches) {
    for (const std::string& id : b) ++read[id];
  }
  EXPECT_EQ(read.size(), static_cast<size_t>(kRepos));
  for (const auto& [id, list] : poller.polls()) {
    ASSERT_EQ(list.size(), 2u) << id;
    EXPECT_GE(list[1].at - list[0].at, kInterval) << id << " was checked early";
  }
}

}  // namespace
}  // namespace ferry::repo_watcher
