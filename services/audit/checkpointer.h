#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/time/time.h"
#include "services/audit/audit_log.h"

namespace ferry::audit {

// Signs a checkpoint every `interval` when the head moved, and once more at
// Stop(). Failures are logged and retried at the next tick. Thread-safe.
class Checkpointer {
 public:
  Checkpointer(AuditLog& log, absl::Duration interval);
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
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool stopped_ = false;
  std::thread thread_;
};

}  // namespace ferry::audit
