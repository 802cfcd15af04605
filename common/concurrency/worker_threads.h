#pragma once

#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "common/concurrency/mutex.h"

namespace ferry::concurrency {

// Runs each job at once on a thread of its own, like starting a std::thread
// for it, but a thread whose job has returned waits up to `idle` for the
// next job before it exits, and Run hands a job to a waiting thread before
// it starts a new one. Never queues a job behind another. Issue #23: a
// commit touching 10,000 applications started and tore down a thread per
// plan hand-off and one per deployment, 20,000 in all. Thread-safe.
//
//   WorkerThreads workers;
//   workers.Run([&] { Deploy(d); });  // on an idle thread, or a new one
//   workers.Join();                   // after the jobs: every thread exits
class WorkerThreads {
 public:
  explicit WorkerThreads(absl::Duration idle = absl::Seconds(10));
  ~WorkerThreads();  // Join().
  WorkerThreads(const WorkerThreads&) = delete;
  WorkerThreads& operator=(const WorkerThreads&) = delete;

  // Runs `job` now on a waiting thread, else on a new one. `job` must not
  // throw (wrap it in RunGuarded); it is destroyed, with what it captured,
  // on its thread once it has returned.
  void Run(std::function<void()> job);
  // Ends the waiting threads' wait, then waits for every running job and
  // joins every thread. Run may be called again afterwards.
  void Join();

 private:
  // A thread waiting for its next job; Run hands it one.
  struct Waiting {
    std::function<void()> job;
    bool handed = false;
  };
  // A thread's life: `job`, then the jobs handed to it while it waits.
  void Loop(std::function<void()> job);

  const absl::Duration idle_;

  Mutex mu_;
  CondVar cv_;  // Signalled when a job is handed out, a thread exits, or Join starts.
  bool joining_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
  // Exited, not yet joined (joined by the next Run or by Join).
  std::vector<std::thread::id> exited_ ABSL_GUARDED_BY(mu_);
  // Owned by their waiting threads; the last to wait is handed the next job.
  std::vector<Waiting*> waiting_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::concurrency
