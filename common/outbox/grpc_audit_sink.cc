#include "common/outbox/grpc_audit_sink.h"

#include "absl/time/clock.h"
#include "common/status/grpc_status.h"

namespace ferry::outbox {

GrpcAuditSink::GrpcAuditSink(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout)
    : stub_(v1::Audit::NewStub(std::move(channel))), timeout_(timeout) {}

absl::Status GrpcAuditSink::AppendBatch(const std::vector<v1::Event>& events) {
  v1::AppendBatchRequest request;
  for (const v1::Event& e : events) *request.add_events() = e;
  v1::AppendBatchResponse response;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  return FromGrpcStatus(stub_->AppendBatch(&context, request, &response));
}

}  // namespace ferry::outbox
