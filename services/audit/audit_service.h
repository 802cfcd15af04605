#pragma once

#include "common/server/stream_limiter.h"
#include "ferry/v1/audit.grpc.pb.h"
#include "services/audit/audit_log.h"
#include "services/audit/time_travel.h"

namespace ferry::audit {

// The stream limiters of the audit service's streaming RPCs (null: unlimited).
struct AuditStreamLimiters {
  server::StreamLimiter* tail = nullptr;
  server::StreamLimiter* export_ = nullptr;
};

// gRPC handlers of ferry.v1.Audit: translate, delegate to AuditLog, map the
// status. Thread-safe.
// Append and AppendBatch use the callback API: they queue the request with
// the appender and return, and the appender's committer finishes the call
// once the group commit is durable, so no server thread waits per request.
class AuditService final
    : public v1::Audit::WithCallbackMethod_Append<v1::Audit::WithCallbackMethod_AppendBatch<v1::Audit::Service>> {
 public:
  // `history` answers time travel and DORA (null: those RPCs are UNIMPLEMENTED).
  explicit AuditService(AuditLog& log, AuditStreamLimiters streams = {}, TimeTravel* history = nullptr)
      : log_(log), streams_(streams), history_(history) {}

  grpc::ServerUnaryReactor* Append(grpc::CallbackServerContext* ctx, const v1::AppendRequest* req,
                                   v1::AppendResponse* out) override;
  grpc::ServerUnaryReactor* AppendBatch(grpc::CallbackServerContext* ctx, const v1::AppendBatchRequest* req,
                                        v1::AppendBatchResponse* out) override;
  grpc::Status Query(grpc::ServerContext* ctx, const v1::QueryRequest* req, v1::QueryResponse* out) override;
  grpc::Status Tail(grpc::ServerContext* ctx, const v1::TailRequest* req,
                    grpc::ServerWriter<v1::TailResponse>* writer) override;
  grpc::Status VerifyChain(grpc::ServerContext* ctx, const v1::VerifyChainRequest* req,
                           v1::VerifyChainResponse* out) override;
  grpc::Status GetCheckpoint(grpc::ServerContext* ctx, const v1::GetCheckpointRequest* req,
                             v1::Checkpoint* out) override;
  grpc::Status Export(grpc::ServerContext* ctx, const v1::ExportRequest* req,
                      grpc::ServerWriter<v1::ExportResponse>* writer) override;
  grpc::Status GetDoraMetrics(grpc::ServerContext* ctx, const v1::GetDoraMetricsRequest* req,
                              v1::GetDoraMetricsResponse* out) override;
  grpc::Status GetDeployedState(grpc::ServerContext* ctx, const v1::GetDeployedStateRequest* req,
                                v1::GetDeployedStateResponse* out) override;
  grpc::Status ListChanges(grpc::ServerContext* ctx, const v1::ListChangesRequest* req,
                           v1::ListChangesResponse* out) override;

 private:
  absl::StatusOr<TimeTravel*> History() const;

  AuditLog& log_;
  const AuditStreamLimiters streams_;
  TimeTravel* const history_;
};

}  // namespace ferry::audit
