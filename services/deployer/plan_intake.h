#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/concurrency/mutex.h"
#include "common/concurrency/worker_threads.h"

namespace ferry::deployer {

// Takes plans from the ordered release stream several at a time: each plan
// is handed off (acknowledged, recorded, started) on a worker thread (one
// that finished a hand-off is reused: WorkerThreads), at most
// `limit` at once and never two for the same key (application and
// environment) at once, so plans of one application keep their order. The
// stream position is advanced only over a prefix of plans whose hand-off
// finished: `advance` is called, from a worker or Drain() and never
// concurrently with itself, with the newest such position. A plan whose
// hand-off failed stops the intake: later ones are still finished, but the
// position stays before the failed plan so that it is delivered again
// (hand-offs are idempotent). While other hand-offs still run, `advance` is
// called at most once each `min_advance_interval` (issue #23: a save of the
// position per plan of a commit touching 10,000); the newest position is
// advanced to as soon as none runs. Thread-compatible: one feeder thread
// calls Submit and Drain.
class PlanIntake {
 public:
  PlanIntake(int limit, std::function<void(const std::string& position)> advance,
             absl::Duration min_advance_interval = absl::ZeroDuration());
  ~PlanIntake();  // Drain()s.
  PlanIntake(const PlanIntake&) = delete;
  PlanIntake& operator=(const PlanIntake&) = delete;

  // Waits for a free slot and for the key to be idle, then runs `handoff` on
  // a worker. Returns false (without running it) once a hand-off failed.
  bool Submit(const std::string& key, const std::string& position, std::function<absl::Status()> handoff);
  // Waits for every running hand-off; returns the first failure (and resets
  // for a new stream).
  absl::Status Drain();

 private:
  struct Slot {
    std::string position;
    bool done = false;
  };
  void Finish(uint64_t index, const std::string& key, absl::Status status);
  // Advances over finished slots at the front; releases mu_ while it calls
  // `advance_`.
  void AdvanceLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int limit_;
  const std::function<void(const std::string&)> advance_;
  const absl::Duration min_advance_interval_;

  ferry::Mutex mu_;
  ferry::CondVar cv_;  // Signalled when a hand-off finishes or advancing ends.
  std::deque<Slot> window_ ABSL_GUARDED_BY(mu_);  // submitted, not yet advanced over, in order
  uint64_t first_index_ ABSL_GUARDED_BY(mu_) = 0;  // index of window_.front()
  uint64_t next_index_ ABSL_GUARDED_BY(mu_) = 0;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<std::string> busy_keys_ ABSL_GUARDED_BY(mu_);
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
  bool advancing_ ABSL_GUARDED_BY(mu_) = false;
  // Advanced over, not yet given to `advance_` (its interval had not passed).
  std::string unadvanced_ ABSL_GUARDED_BY(mu_);
  absl::Time last_advance_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // Last: destroyed (joined) first, while what the hand-offs use still exists.
  concurrency::WorkerThreads workers_;
};

}  // namespace ferry::deployer
