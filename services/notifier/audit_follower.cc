#include "services/notifier/audit_follower.h"

#include <grpcpp/grpcpp.h>

#include <deque>
#include <thread>

#include "common/logging/logger.h"
#include "common/status/grpc_status.h"
#include "services/notifier/notification_event.h"

namespace ferry::notifier {
namespace {

// The events a Tail session's reader thread has received and the ingester
// has not yet taken: whatever arrived together is taken as one batch.
// Bounded: the reader waits while it is full. Thread-safe.
class TailQueue {
 public:
  explicit TailQueue(size_t max_batch) : max_batch_(max_batch) {}

  // Adds an event; waits while the queue is full. False when abandoned.
  bool Push(v1::Event event) {
    MutexLock lock(&mu_);
    while (queue_.size() >= 2 * max_batch_ && !abandoned_) cv_.Wait(&mu_);
    if (abandoned_) return false;
    queue_.push_back(std::move(event));
    cv_.SignalAll();
    return true;
  }
  // The stream ended (or failed): Take returns what is left, then nothing.
  void End() {
    MutexLock lock(&mu_);
    ended_ = true;
    cv_.SignalAll();
  }
  // The ingester stopped taking: a waiting Push returns.
  void Abandon() {
    MutexLock lock(&mu_);
    abandoned_ = true;
    cv_.SignalAll();
  }
  // Waits for at least one event and returns up to max_batch of those
  // received; empty when the stream ended and everything was taken.
  std::vector<v1::Event> Take() {
    MutexLock lock(&mu_);
    while (queue_.empty() && !ended_) cv_.Wait(&mu_);
    std::vector<v1::Event> out;
    while (!queue_.empty() && out.size() < max_batch_) {
      out.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    cv_.SignalAll();
    return out;
  }

 private:
  const size_t max_batch_;
  Mutex mu_;
  CondVar cv_;
  std::deque<v1::Event> queue_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  bool abandoned_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

AuditFollower::AuditFollower(std::shared_ptr<grpc::Channel> audit, NotifierStore& store, EventIngester& ingester)
    : stub_(v1::Audit::NewStub(std::move(audit))), store_(store), ingester_(ingester) {
  concurrency::LoopOptions options;
  options.backoff = {.initial = absl::Milliseconds(200), .max = absl::Seconds(10), .jitter = 0.2, .factor = 2.0};
  loop_ = std::make_unique<concurrency::BackgroundLoop>("audit-follower", [this] { return Session(); }, options);
}

AuditFollower::~AuditFollower() { Stop(); }

void AuditFollower::Start() { loop_->Start(); }

void AuditFollower::Stop() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    if (current_ != nullptr) current_->TryCancel();
  }
  loop_->Stop();
}

absl::StatusOr<absl::Duration> AuditFollower::Session() {
  absl::StatusOr<int64_t> cursor = store_.Cursor();
  if (!cursor.ok()) return cursor.status();
  grpc::ClientContext context;
  {
    MutexLock lock(&mu_);
    if (stopping_) return absl::InfiniteDuration();
    current_ = &context;
  }
  v1::TailRequest req;
  req.set_after_sequence(*cursor);
  for (v1::AuditAction a : FollowedActions()) req.mutable_filter()->add_actions(a);
  std::unique_ptr<grpc::ClientReader<v1::TailResponse>> reader = stub_->Tail(&context, req);
  // One thread reads the stream while this one records: the events that
  // arrived while a batch was being recorded are recorded together next, in
  // one transaction (issue #23: a burst of 7,000 events took 2,841
  // transactions when each was recorded as it came).
  TailQueue queue(kMaxBatch);
  std::thread pump([&] {
    v1::TailResponse resp;
    while (reader->Read(&resp)) {
      if (!queue.Push(std::move(*resp.mutable_event()))) break;
    }
    queue.End();
  });
  absl::Status failed;
  for (;;) {
    std::vector<v1::Event> batch = queue.Take();
    if (batch.empty()) break;
    {
      // Stopping: what is left is read again from the stored cursor.
      MutexLock lock(&mu_);
      if (stopping_) {
        queue.Abandon();
        break;
      }
    }
    if (absl::Status st = ingester_.IngestBatch(batch); !st.ok()) {
      failed = absl::Status(st.code(), "recording audit events " + std::to_string(batch.front().sequence()) + " to " +
                                           std::to_string(batch.back().sequence()) + ": " + std::string(st.message()));
      context.TryCancel();
      queue.Abandon();
      break;
    }
  }
  pump.join();
  grpc::Status finished = reader->Finish();
  {
    MutexLock lock(&mu_);
    current_ = nullptr;
    if (stopping_) return absl::InfiniteDuration();
  }
  if (!failed.ok()) return failed;
  if (!finished.ok()) return FromGrpcStatus(finished);
  return absl::UnavailableError("the audit Tail stream ended");
}

}  // namespace ferry::notifier
