#pragma once

#include <memory>

#include <grpcpp/channel.h>

#include "common/outbox/audit_sink.h"
#include "ferry/v1/audit.grpc.pb.h"

namespace ferry::outbox {

// AuditSink over ferry.v1.Audit/AppendBatch. Thread-safe.
class GrpcAuditSink final : public AuditSink {
 public:
  explicit GrpcAuditSink(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout = absl::Seconds(10));
  absl::Status AppendBatch(const std::vector<v1::Event>& events) override;

 private:
  std::unique_ptr<v1::Audit::Stub> stub_;
  const absl::Duration timeout_;
};

}  // namespace ferry::outbox
