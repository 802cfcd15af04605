#include "services/audit/checkpointer.h"

#include "common/logging/logger.h"

namespace ferry::audit {

Checkpointer::Checkpointer(AuditLog& log, absl::Duration interval) : log_(log), interval_(interval) {}

Checkpointer::~Checkpointer() { Stop(); }

void Checkpointer::Start() {
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      if (cv_.wait_for(lock, absl::ToChronoNanoseconds(interval_), [&] { return stopping_; })) return;
      lock.unlock();
      RunOnce();
      lock.lock();
    }
  });
}

void Checkpointer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
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
