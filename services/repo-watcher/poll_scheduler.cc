#include "services/repo-watcher/poll_scheduler.h"

#include <algorithm>
#include <optional>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/concurrency/last_resort.h"
#include "common/logging/logger.h"
#include "services/repo-watcher/repository_spec.h"

namespace ferry::repo_watcher {
namespace {

constexpr size_t kRescanPage = 5000;  // ids read per statement by a rescan

// DispatchDue returns the time left until a due time it read from the clock.
// Counted from its end, a dispatch that took a while (a prefetch, a rescan;
// in tests, a jump of the fake clock meanwhile) would sleep past that time.
concurrency::LoopOptions DispatcherOptions() {
  concurrency::LoopOptions options;
  options.wait_from_step_start = true;
  return options;
}

}  // namespace

PollScheduler::PollScheduler(RepositoryStore* store, RepositoryPoller* poller, const WaitableClock* clock,
                             SchedulerOptions options)
    : store_(store),
      poller_(poller),
      clock_(clock),
      options_(options),
      dispatcher_("poll dispatcher", [this] { return DispatchDue(); }, DispatcherOptions(), clock) {}

PollScheduler::~PollScheduler() { Stop(); }

void PollScheduler::Start() {
  MutexLock lock(&mu_);
  if (started_) return;
  started_ = true;
  dispatcher_.Start();
  for (int i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { Work(); });
}

void PollScheduler::Stop() {
  std::vector<std::thread> workers;
  {
    MutexLock lock(&mu_);
    stop_ = true;
    work_cv_.SignalAll();
    done_cv_.SignalAll();
    workers.swap(workers_);
  }
  dispatcher_.Stop();
  for (std::thread& t : workers) {
    if (t.joinable()) t.join();
  }
}

void PollScheduler::IndexLocked(const std::string& id, Entry& e) {
  if (e.indexed || e.queued || e.running) return;
  by_due_.emplace(e.due, id);
  e.indexed = true;
}

void PollScheduler::UnindexLocked(const std::string& id, Entry& e) {
  if (!e.indexed) return;
  by_due_.erase({e.due, id});
  e.indexed = false;
}

void PollScheduler::EnqueueLocked(const std::string& id, Entry& e) {
  if (e.running) {
    e.rerun = true;
    return;
  }
  if (e.queued) return;
  UnindexLocked(id, e);
  e.queued = true;
  ready_.push_back(id);
  work_cv_.Signal();
}

void PollScheduler::Trigger(const std::string& id) {
  MutexLock lock(&mu_);
  Entry& e = entries_[id];
  e.triggered = true;
  e.requested = ++generation_;
  e.pending_full = true;
  EnqueueLocked(id, e);
}

void PollScheduler::TriggerRefs(const std::string& id, const std::vector<std::string>& refs) {
  MutexLock lock(&mu_);
  Entry& e = entries_[id];
  e.triggered = true;
  e.requested = ++generation_;
  e.pending_refs.insert(refs.begin(), refs.end());
  EnqueueLocked(id, e);
}

absl::Status PollScheduler::RefreshAndWait(const std::string& id, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  MutexLock lock(&mu_);
  if (stop_) return absl::UnavailableError("repo-watcher is shutting down");
  Entry& e = entries_[id];
  uint64_t mine = e.requested = ++generation_;
  e.triggered = true;
  e.pending_full = true;
  EnqueueLocked(id, e);
  bool done = false;
  while (true) {
    auto it = entries_.find(id);
    done = stop_ || it == entries_.end() || it->second.completed >= mine;
    if (done || done_cv_.WaitWithDeadline(&mu_, deadline)) break;
  }
  if (!done) {
    auto it = entries_.find(id);
    done = stop_ || it == entries_.end() || it->second.completed >= mine;
  }
  auto it = entries_.find(id);
  if (it == entries_.end()) return absl::NotFoundError(absl::StrCat("repository \"", id, "\" not found"));
  if (stop_) return absl::UnavailableError("repo-watcher is shutting down");
  if (!done) return absl::UnavailableError(absl::StrCat("refresh of \"", id, "\" did not finish in time"));
  return absl::OkStatus();
}

void PollScheduler::Forget(const std::string& id) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  MutexLock lock(&mu_);
  while (true) {
    auto it = entries_.find(id);
    if (stop_ || it == entries_.end() || !it->second.running) break;
    if (done_cv_.WaitWithDeadline(&mu_, deadline)) break;
  }
  auto it = entries_.find(id);
  if (it != entries_.end() && !it->second.running) {
    if (it->second.queued) ready_.erase(std::remove(ready_.begin(), ready_.end(), id), ready_.end());
    UnindexLocked(id, it->second);
    entries_.erase(it);
  }
  done_cv_.SignalAll();
}

void PollScheduler::Rescan() {
  std::vector<std::string> ids;
  std::string after;
  while (true) {
    absl::StatusOr<std::vector<std::string>> page = store_->ListIds(after, kRescanPage);
    if (!page.ok()) {
      logging::Warn("cannot list repositories, retrying", {{"error", page.status().ToString()}});
      return;
    }
    ids.insert(ids.end(), page->begin(), page->end());
    if (page->size() < kRescanPage) break;
    after = page->back();
  }
  absl::BitGen gen;
  MutexLock lock(&mu_);
  absl::Time now = clock_->Now();
  for (const std::string& id : ids) {
    if (entries_.count(id) > 0) continue;
    Entry& e = entries_[id];
    e.due = now + absl::Uniform<double>(gen, 0.0, 1.0) * options_.first_check_spread;
    IndexLocked(id, e);
  }
}

absl::StatusOr<absl::Duration> PollScheduler::DispatchDue() {
  std::vector<std::string> due;
  {
    MutexLock lock(&mu_);
    if (stop_) return absl::InfiniteDuration();
    const absl::Time now = clock_->Now();
    if (now < next_rescan_) {
      if (options_.batch_window <= absl::ZeroDuration()) return QueueDue(now);
      // The first due waits out the window, gathering those due after it.
      if (!by_due_.empty() && by_due_.begin()->first <= now) {
        absl::Duration window = options_.batch_window;
        if (auto first = entries_.find(by_due_.begin()->second); first != entries_.end()) {
          window = std::min(window, first->second.window);
        }
        if (now < by_due_.begin()->first + window) return std::min(by_due_.begin()->first + window, next_rescan_) - now;
      }
      due = TakeDueLocked(now);
      if (due.empty()) return QueueDue(now);  // the wait until the next is due
    }
  }
  if (due.empty()) {  // the rescan is due
    Rescan();
    MutexLock lock(&mu_);
    next_rescan_ = clock_->Now() + options_.rescan_interval;
    return absl::ZeroDuration();  // then queue what is due
  }
  if (due.size() > 1) poller_->Prefetch(due);
  MutexLock lock(&mu_);
  for (const std::string& id : due) {
    auto it = entries_.find(id);
    // Queued, running or due again meanwhile (a trigger), or forgotten.
    if (it == entries_.end() || it->second.queued || it->second.running || it->second.indexed) continue;
    it->second.pending_full = true;
    EnqueueLocked(id, it->second);
  }
  return QueueDue(clock_->Now());
}

std::vector<std::string> PollScheduler::TakeDueLocked(absl::Time now) {
  std::vector<std::string> out;
  while (!by_due_.empty() && by_due_.begin()->first <= now) {
    std::string id = by_due_.begin()->second;
    by_due_.erase(by_due_.begin());
    auto it = entries_.find(id);
    if (it == entries_.end()) continue;  // not expected: entries leave the index before the map
    it->second.indexed = false;
    out.push_back(std::move(id));
  }
  return out;
}

absl::Duration PollScheduler::QueueDue(absl::Time now) {
  while (!by_due_.empty() && by_due_.begin()->first <= now) {
    std::string id = by_due_.begin()->second;
    auto it = entries_.find(id);
    if (it == entries_.end()) {  // not expected: entries leave the index before the map
      by_due_.erase(by_due_.begin());
      continue;
    }
    it->second.pending_full = true;
    EnqueueLocked(id, it->second);  // takes it out of the index
  }
  absl::Time earliest = next_rescan_;
  if (!by_due_.empty()) earliest = std::min(earliest, by_due_.begin()->first);
  return std::max(earliest - now, absl::Milliseconds(1));
}

void PollScheduler::Work() {
  while (true) {
    std::string id;
    std::optional<std::set<std::string>> only_refs;  // nullopt: every tracked ref
    bool scheduled = false;
    {
      MutexLock lock(&mu_);
      while (true) {
        while (!stop_ && ready_.empty()) work_cv_.Wait(&mu_);
        if (stop_) return;
        id = ready_.front();
        ready_.pop_front();
        auto it = entries_.find(id);
        if (it == entries_.end()) continue;
        Entry& e = it->second;
        e.queued = false;
        e.running = true;
        e.rerun = false;
        e.started = e.requested;
        if (!e.pending_full && !e.pending_refs.empty()) only_refs = std::move(e.pending_refs);
        e.pending_full = false;
        e.pending_refs.clear();
        scheduled = !e.triggered;
        e.triggered = false;
        break;
      }
    }
    // The last resort for what Poll does outside its own guard (reading the
    // repository, recording the check): the worker thread lives on and the
    // repository is checked again after a failure's delay.
    logging::Debug("poll started", {{"repository", id},
                                    {"refs", only_refs.has_value() ? absl::StrJoin(*only_refs, ",") : "all"}});
    PollResult result;
    absl::Status guarded = concurrency::RunGuarded(absl::StrCat("poll worker for ", id), [&] {
      result = poller_->Poll(id, only_refs.has_value() ? &*only_refs : nullptr, scheduled);
    });
    if (!guarded.ok()) {
      result = PollResult();
      result.status = guarded;
      result.next_check = clock_->Now() + poller_->NextDelay(kDefaultPollInterval, 1);
    }
    MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) continue;
    Entry& done = it->second;
    done.running = false;
    done.completed = done.started;
    done.last_status = result.status;
    // A poll of a few refs leaves the next full check where it was.
    done.due = only_refs.has_value() ? std::min(done.due, result.next_check) : result.next_check;
    done.window = std::max(absl::ZeroDuration(), (done.due - clock_->Now()) / 10);
    logging::Debug("poll finished", {{"repository", id},
                                     {"next_check_in_s", absl::ToDoubleSeconds(done.due - clock_->Now())},
                                     {"rerun", done.rerun}});
    if (result.repository_gone && !done.rerun) {
      entries_.erase(it);
    } else if (done.rerun) {
      done.rerun = false;
      EnqueueLocked(id, done);
    } else {
      IndexLocked(id, done);
    }
    done_cv_.SignalAll();
    dispatcher_.Wake();
  }
}

}  // namespace ferry::repo_watcher
