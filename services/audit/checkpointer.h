#pragma once

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "common/concurrency/background_loop.h"
#include "common/concurrency/mutex.h"
#include "services/audit/audit_log.h"

namespace ferry::audit {

// Signs a checkpoint every `interval` when the head moved, and once more at
// Stop(). Failures are logged and retried at the next tick. Thread-safe.
class Checkpointer {
 public:
  // `clock` (the system clock when null) times the ticks.
  Checkpointer(AuditLog& log, absl::Duration interval, const WaitableClock* clock = nullptr);
  ~Checkpointer();  // Stop()s.
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  void Start();
  // Stops the timer and signs a final checkpoint. Idempotent.
  void Stop();

 private:
  void RunOnce();

  AuditLog& log_;
  const absl::Duration interval_;
  Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  concurrency::BackgroundLoop loop_;
};

}  // namespace ferry::audit
