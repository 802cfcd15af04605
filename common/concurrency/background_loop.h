#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "common/concurrency/backoff.h"
#include "common/concurrency/mutex.h"

namespace ferry::concurrency {

struct LoopOptions {
  // The wait after a failed step; reset by a successful one.
  BackoffPolicy backoff;
  // How long after Start() the first step runs.
  absl::Duration first_run_after = absl::ZeroDuration();
  // Whether Wake() cuts a wait after a failure short. When false, only the
  // backoff (or Stop) ends it, and wakes during it are dropped.
  bool wake_ends_backoff = true;
  // Whether the wait a step returns counts from when the step began rather
  // than from when it ended. For a step that reads the clock and returns the
  // time left until a deadline: counted from its end, the wait overshoots
  // the deadline by however far the clock moved during the step (the time
  // the step took; with a fake clock, any jump a test made meanwhile).
  bool wait_from_step_start = false;
  // Called on the loop's thread after a failed step, with the failure and
  // the wait before the next one; by default a warning is logged.
  std::function<void(const absl::Status& failure, absl::Duration retry_in)> on_failure;
};

// Runs a step function over and over on a thread of its own until Stop().
// The step says when it wants to run next, or fails: failures wait out a
// backoff (exponential, capped, jittered if the policy says so, reset by a
// success). Wake() runs the step as soon as the current one (or wait) ends.
// A step that throws is caught, logged and counted as a failure: no
// exception leaves the thread. Time and waits go through a WaitableClock,
// so tests drive the loop with a fake clock instead of sleeping.
// Thread-safe.
class BackgroundLoop {
 public:
  // Returns the wait before the next run (absl::InfiniteDuration(): not
  // until Wake()), counted from the step's end (or its start, see
  // LoopOptions::wait_from_step_start), or a failure.
  using Step = std::function<absl::StatusOr<absl::Duration>()>;

  // `name` appears in logs. `clock` must outlive the loop; the system clock
  // when null.
  BackgroundLoop(std::string name, Step step, LoopOptions options = {}, const WaitableClock* clock = nullptr);
  ~BackgroundLoop();  // Stop()s.
  BackgroundLoop(const BackgroundLoop&) = delete;
  BackgroundLoop& operator=(const BackgroundLoop&) = delete;

  // Starts the thread. Idempotent; a stopped loop does not start again.
  void Start();
  // Ends the wait (or lets the running step finish) and joins the thread.
  // Idempotent; safe before Start().
  void Stop();
  // Runs the step as soon as possible (see LoopOptions::wake_ends_backoff).
  void Wake();

 private:
  void Run();
  // The step, with exceptions turned into INTERNAL (RunGuarded).
  absl::StatusOr<absl::Duration> RunStep();
  bool Stopping();

  const std::string name_;
  const Step step_;
  const LoopOptions options_;
  const WaitableClock* clock_;
  const std::unique_ptr<Alarm> alarm_;

  Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::concurrency
