#pragma once

#include <memory>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include "absl/base/thread_annotations.h"
#include "common/concurrency/background_loop.h"
#include "common/concurrency/mutex.h"
#include "ferry/v1/audit.grpc.pb.h"
#include "services/notifier/event_ingester.h"
#include "services/notifier/notifier_store.h"

namespace ferry::notifier {

// Follows ferry-audit's Tail from the stored cursor, for the actions the
// notifier cares about (FollowedActions), and hands the events to the
// ingester in batches: those that arrived while the previous batch was
// being recorded (at most kMaxBatch) are recorded in one transaction. On
// any failure (the stream ends, the audit service is down, an event cannot
// be recorded) it backs off and opens Tail again from the stored cursor, so
// no event is skipped and none recorded twice.
class AuditFollower {
 public:
  AuditFollower(std::shared_ptr<grpc::Channel> audit, NotifierStore& store, EventIngester& ingester);
  ~AuditFollower();

  void Start();
  // Cancels the open stream and joins the thread. Idempotent.
  void Stop();

 private:
  static constexpr size_t kMaxBatch = 500;
  // One Tail session; returns only with a failure (the loop backs off).
  absl::StatusOr<absl::Duration> Session();

  std::unique_ptr<v1::Audit::Stub> stub_;
  NotifierStore& store_;
  EventIngester& ingester_;
  Mutex mu_;
  grpc::ClientContext* current_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::unique_ptr<concurrency::BackgroundLoop> loop_;
};

}  // namespace ferry::notifier
