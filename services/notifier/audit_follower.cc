#include "services/notifier/audit_follower.h"

#include <grpcpp/grpcpp.h>

#include "common/logging/logger.h"
#include "common/status/grpc_status.h"
#include "services/notifier/notification_event.h"

namespace ferry::notifier {

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
  v1::TailResponse resp;
  absl::Status failed;
  while (reader->Read(&resp)) {
    if (absl::Status st = ingester_.Ingest(resp.event()); !st.ok()) {
      failed = absl::Status(st.code(), "recording audit event " + std::to_string(resp.event().sequence()) + ": " +
                                           std::string(st.message()));
      context.TryCancel();
      break;
    }
  }
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
