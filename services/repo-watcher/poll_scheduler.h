#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "common/concurrency/background_loop.h"
#include "common/concurrency/mutex.h"
#include "services/repo-watcher/repo_poller.h"
#include "services/repo-watcher/repository_store.h"

namespace ferry::repo_watcher {

struct SchedulerOptions {
  int workers = 3;                                // concurrent polls
  absl::Duration rescan_interval = absl::Seconds(10);  // pick up repositories registered elsewhere
  absl::Duration first_check_spread = absl::Seconds(1);  // start-up checks spread over this
  // Scheduled checks wait up to this long after they fall due (and at most
  // a tenth of the repository's wait before it), so that the ones falling
  // due meanwhile are dispatched together and what they read is read in
  // one go (RepositoryPoller::Prefetch; issue #23). Zero: each is
  // dispatched the moment it is due, alone.
  absl::Duration batch_window = absl::ZeroDuration();
};

// Runs RepoPoller for every registered repository on its own schedule
// (interval plus jitter, backoff on failure), on a bounded worker pool.
// A repository is never polled by two threads at once; a trigger that
// arrives during a poll runs another poll right after it. Thread-safe.
class PollScheduler {
 public:
  // The dispatcher sleeps on `clock` (a fake one in tests).
  PollScheduler(RepositoryStore* store, RepositoryPoller* poller, const WaitableClock* clock,
                SchedulerOptions options = {});
  ~PollScheduler();

  void Start();
  // Stops dispatching and joins the workers (in-flight polls finish).
  void Stop();

  // Polls `id` as soon as a worker is free, bypassing schedule and backoff.
  void Trigger(const std::string& id);
  // As Trigger, but checks only `refs` (a push webhook naming them): other
  // tracked refs are neither listed as moved nor as deleted, and the next
  // scheduled full check keeps its time. Merged with other triggers that
  // arrive before the poll starts (a full one wins).
  void TriggerRefs(const std::string& id, const std::vector<std::string>& refs);
  // Triggers and waits until a poll that started after this call has
  // finished. OK even when the check failed (the failure is in the
  // repository status); NOT_FOUND for an unknown repository, UNAVAILABLE
  // when stopping or after `timeout`.
  absl::Status RefreshAndWait(const std::string& id, absl::Duration timeout = absl::Seconds(60));
  // Forgets a deleted repository, waiting (up to 30 s) for a poll of it
  // that is in flight to finish, so that its mirror can be removed after.
  void Forget(const std::string& id);

 private:
  struct Entry {
    absl::Time due = absl::InfinitePast();
    bool queued = false;
    bool running = false;
    bool rerun = false;
    uint64_t requested = 0;   // trigger generation asked for
    uint64_t started = 0;     // generation covered by the running poll
    uint64_t completed = 0;   // generation covered by the last finished poll
    absl::Status last_status;
    // What the next poll checks: every tracked ref, or only `refs`.
    bool pending_full = false;
    std::set<std::string> pending_refs;
    bool indexed = false;    // in by_due_ at `due`
    bool triggered = false;  // the next poll was asked for (not only due)
    // How long its next scheduled check may wait for others: the batch
    // window, but at most a tenth of the wait before it (a 1 s poll
    // interval is not stretched to 2 s).
    absl::Duration window = absl::InfiniteDuration();
  };
  // One round of the dispatcher loop: rescan when due, queue the
  // repositories that are due; returns the wait until the next is.
  absl::StatusOr<absl::Duration> DispatchDue();
  // Queues the repositories due at `now`; returns the wait until the next is.
  // Reads only the due ones and the next (by_due_), not every entry.
  absl::Duration QueueDue(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes the repositories due at `now` out of the index (to be queued
  // after the poller's Prefetch of them).
  std::vector<std::string> TakeDueLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // An entry that is neither queued nor running waits in by_due_ at its due
  // time; these keep that true whenever one of the three changes.
  void IndexLocked(const std::string& id, Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UnindexLocked(const std::string& id, Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Work();
  void Rescan();
  void EnqueueLocked(const std::string& id, Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  RepositoryStore* store_;
  RepositoryPoller* poller_;
  const WaitableClock* clock_;
  const SchedulerOptions options_;

  Mutex mu_;
  CondVar work_cv_;  // ready_ or stop_ changed
  CondVar done_cv_;  // a poll finished, an entry was forgotten, or stop_
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  // The entries waiting for their next check, by due time: dispatching is
  // O(log n) per poll where a scan of entries_ after each poll made it
  // O(n) (10,000 repositories at a 60 s interval: 1.7 million entries
  // visited a second).
  std::set<std::pair<absl::Time, std::string>> by_due_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> ready_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time next_rescan_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_ ABSL_GUARDED_BY(mu_);
  concurrency::BackgroundLoop dispatcher_;  // woken when a poll finishes
};

}  // namespace ferry::repo_watcher
