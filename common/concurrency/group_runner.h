#pragma once

#include <cstdint>
#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "common/concurrency/mutex.h"

namespace ferry::concurrency {

// Runs one shared operation on behalf of every caller waiting for it (group
// commit). Run() returns once a run that STARTED AFTER the call began has
// finished, with that run's status: whatever the caller did before calling
// Run() is seen by the run. Runs never overlap; callers that arrive while a
// run is in progress are all served by the next one, so N concurrent
// callers cost about two runs, not N. Thread-safe.
//
//   GroupRunner release([&] { return ReleaseEverythingReady(); });
//   ... commit a plan ...
//   absl::Status released = release.Run();  // the plan is released, or why not
class GroupRunner {
 public:
  explicit GroupRunner(std::function<absl::Status()> run);
  GroupRunner(const GroupRunner&) = delete;
  GroupRunner& operator=(const GroupRunner&) = delete;

  // Waits for (or performs, on this thread) a run that starts after this
  // call began; returns the status of the latest run finished by then (which
  // started after this call began too).
  absl::Status Run();

  // Runs started so far (for tests and metrics).
  uint64_t runs() const;

 private:
  const std::function<absl::Status()> run_;
  mutable Mutex mu_;
  CondVar finished_cv_;
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t started_ ABSL_GUARDED_BY(mu_) = 0;   // runs started
  uint64_t finished_ ABSL_GUARDED_BY(mu_) = 0;  // the number of the latest finished run
  absl::Status last_ ABSL_GUARDED_BY(mu_);      // its status
};

}  // namespace ferry::concurrency
