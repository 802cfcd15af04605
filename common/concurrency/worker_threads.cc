#include "common/concurrency/worker_threads.h"

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"

namespace ferry::concurrency {

WorkerThreads::WorkerThreads(absl::Duration idle) : idle_(idle) {}

WorkerThreads::~WorkerThreads() { Join(); }

void WorkerThreads::Run(std::function<void()> job) {
  std::vector<std::thread> exited;
  {
    MutexLock l(&mu_);
    if (!waiting_.empty()) {
      Waiting* thread = waiting_.back();
      waiting_.pop_back();
      thread->job = std::move(job);
      thread->handed = true;
      cv_.SignalAll();
      return;
    }
    // Reap the threads that exited; joined below, without mu_.
    for (auto it = threads_.begin(); it != threads_.end();) {
      if (std::find(exited_.begin(), exited_.end(), it->get_id()) != exited_.end()) {
        exited.push_back(std::move(*it));
        it = threads_.erase(it);
      } else {
        ++it;
      }
    }
    exited_.clear();
    threads_.emplace_back([this, job = std::move(job)]() mutable { Loop(std::move(job)); });
  }
  for (std::thread& t : exited) t.join();
}

void WorkerThreads::Loop(std::function<void()> job) {
  for (;;) {
    job();
    job = nullptr;
    MutexLock l(&mu_);
    Waiting me;
    if (!joining_) {
      waiting_.push_back(&me);
      const absl::Time deadline = absl::Now() + idle_;
      while (!me.handed && !joining_) {
        if (cv_.WaitWithDeadline(&mu_, deadline)) break;
      }
    }
    if (!me.handed) {
      // Nothing came in time, or Join: exit (unless handed a job meanwhile).
      std::erase(waiting_, &me);
      exited_.push_back(std::this_thread::get_id());
      return;
    }
    job = std::move(me.job);
  }
}

void WorkerThreads::Join() {
  std::vector<std::thread> threads;
  {
    MutexLock l(&mu_);
    joining_ = true;
    cv_.SignalAll();
    threads.swap(threads_);
  }
  for (std::thread& t : threads) t.join();
  MutexLock l(&mu_);
  joining_ = false;
  exited_.clear();
}

}  // namespace ferry::concurrency
