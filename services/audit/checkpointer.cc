#include "services/audit/checkpointer.h"

#include "common/logging/logger.h"

namespace ferry::audit {
namespace {

concurrency::LoopOptions TickEvery(absl::Duration interval) {
  concurrency::LoopOptions options;
  options.first_run_after = interval;
  return options;
}

}  // namespace

Checkpointer::Checkpointer(AuditLog& log, absl::Duration interval, const WaitableClock* clock)
    : log_(log),
      interval_(interval),
      loop_(
          "checkpointer",
          [this]() -> absl::StatusOr<absl::Duration> {
            RunOnce();  // logs its own failure; the next tick retries
            return interval_;
          },
          TickEvery(interval), clock) {}

Checkpointer::~Checkpointer() { Stop(); }

void Checkpointer::Start() { loop_.Start(); }

void Checkpointer::Stop() {
  {
    MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  loop_.Stop();
  RunOnce();
}

void Checkpointer::RunOnce() {
  absl::StatusOr<std::optional<v1::Checkpoint>> c = log_.MakeCheckpoint();
  if (!c.ok()) {
    logging::Error("checkpoint not signed", {{"error", c.status().ToString()}});
  } else if (c->has_value()) {
    logging::Info("checkpoint signed", {{"sequence", (*c)->sequence()},
                                        {"head_hash", (*c)->head_hash()},
                                        {"public_key_id", (*c)->public_key_id()}});
  }
}

}  // namespace ferry::audit
