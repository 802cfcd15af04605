#include "services/audit/audit_service.h"

#include "common/server/handler.h"
#include "common/status/grpc_status.h"

namespace ferry::audit {
namespace {

void ToProto(AppendResult&& r, v1::AppendResponse* out) {
  *out->mutable_event() = std::move(r.event);
  out->set_duplicate(r.duplicate);
}

std::string CallerService(const auth::Principal& caller, const std::string& claimed) {
  if (caller.kind == auth::PrincipalKind::kService) return caller.id;
  return server::InstalledAccessControl() != nullptr && server::InstalledAccessControl()->enabled() ? "" : claimed;
}

}  // namespace

grpc::ServerUnaryReactor* AuditService::Append(grpc::CallbackServerContext* ctx, const v1::AppendRequest* req,
                                               v1::AppendResponse* out) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::StatusOr<auth::Principal> caller = server::Authorize(*ctx, *req);
  if (!caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  // The event's service is the calling service its certificate proves;
  // only with access control off (--insecure-no-auth, no certificate) does
  // the request's own field stand in.
  const std::string caller_service = CallerService(*caller, req->event().service());
  log_.AppendAsync(caller_service, req->event(), [reactor, out](absl::StatusOr<AppendResult> r) {
    if (!r.ok()) return reactor->Finish(ToGrpcStatus(r.status()));
    ToProto(std::move(*r), out);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* AuditService::AppendBatch(grpc::CallbackServerContext* ctx,
                                                    const v1::AppendBatchRequest* req,
                                                    v1::AppendBatchResponse* out) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::StatusOr<auth::Principal> caller = server::Authorize(*ctx, *req);
  if (!caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  const std::string caller_service =
      CallerService(*caller, req->events().empty() ? std::string() : req->events(0).service());
  log_.AppendBatchAsync(caller_service, std::vector<v1::Event>(req->events().begin(), req->events().end()),
                        [reactor, out](Appender::Result r) {
                          if (!r.ok()) return reactor->Finish(ToGrpcStatus(r.status()));
                          for (AppendResult& one : *r) ToProto(std::move(one), out->add_results());
                          reactor->Finish(grpc::Status::OK);
                        });
  return reactor;
}

grpc::Status AuditService::Query(grpc::ServerContext* ctx, const v1::QueryRequest* req, v1::QueryResponse* out) {
  return server::Handle(ctx, *req, out, [&] { return log_.Query(*req); });
}

grpc::Status AuditService::Tail(grpc::ServerContext* ctx, const v1::TailRequest* req,
                                grpc::ServerWriter<v1::TailResponse>* writer) {
  if (absl::Status bad = server::CheckRequest(*req); !bad.ok()) return ToGrpcStatus(bad);
  absl::StatusOr<auth::Principal> caller = server::Authorize(*ctx, *req);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  absl::StatusOr<server::StreamLimiter::Slot> slot = server::AcquireStream(streams_.tail, *ctx);
  if (!slot.ok()) return ToGrpcStatus(slot.status());
  return ToGrpcStatus(log_.Tail(
      *req,
      [&](const v1::Event& e) {
        v1::TailResponse r;
        *r.mutable_event() = e;
        return writer->Write(r);
      },
      [&] { return ctx->IsCancelled(); }));
}

grpc::Status AuditService::VerifyChain(grpc::ServerContext* ctx, const v1::VerifyChainRequest* req,
                                       v1::VerifyChainResponse* out) {
  return server::Handle(ctx, *req, out, [&] { return log_.VerifyChain(*req); });
}

grpc::Status AuditService::GetCheckpoint(grpc::ServerContext* ctx, const v1::GetCheckpointRequest* req,
                                         v1::Checkpoint* out) {
  return server::Handle(ctx, *req, out, [&] { return log_.GetCheckpoint(req->sequence()); });
}

grpc::Status AuditService::Export(grpc::ServerContext* ctx, const v1::ExportRequest* req,
                                  grpc::ServerWriter<v1::ExportResponse>* writer) {
  if (absl::Status bad = server::CheckRequest(*req); !bad.ok()) return ToGrpcStatus(bad);
  absl::StatusOr<auth::Principal> caller = server::Authorize(*ctx, *req);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  absl::StatusOr<server::StreamLimiter::Slot> slot = server::AcquireStream(streams_.export_, *ctx);
  if (!slot.ok()) return ToGrpcStatus(slot.status());
  return ToGrpcStatus(log_.Export(*req, [&](const std::string& line) {
    v1::ExportResponse r;
    r.set_json_line(line);
    return writer->Write(r);
  }));
}

absl::StatusOr<TimeTravel*> AuditService::History() const {
  if (history_ == nullptr) return absl::UnimplementedError("time travel is not configured on this audit service");
  return history_;
}

grpc::Status AuditService::GetDoraMetrics(grpc::ServerContext* ctx, const v1::GetDoraMetricsRequest* req,
                                          v1::GetDoraMetricsResponse* out) {
  return server::Handle(ctx, *req, out, [&]() -> absl::StatusOr<v1::GetDoraMetricsResponse> {
    absl::StatusOr<TimeTravel*> history = History();
    if (!history.ok()) return history.status();
    return (*history)->GetDoraMetrics(*req);
  });
}

grpc::Status AuditService::GetDeployedState(grpc::ServerContext* ctx, const v1::GetDeployedStateRequest* req,
                                            v1::GetDeployedStateResponse* out) {
  return server::Handle(ctx, *req, out, [&]() -> absl::StatusOr<v1::GetDeployedStateResponse> {
    absl::StatusOr<TimeTravel*> history = History();
    if (!history.ok()) return history.status();
    return (*history)->GetDeployedState(*req);
  });
}

grpc::Status AuditService::ListChanges(grpc::ServerContext* ctx, const v1::ListChangesRequest* req,
                                       v1::ListChangesResponse* out) {
  return server::Handle(ctx, *req, out, [&]() -> absl::StatusOr<v1::ListChangesResponse> {
    absl::StatusOr<TimeTravel*> history = History();
    if (!history.ok()) return history.status();
    return (*history)->ListChanges(*req);
  });
}

}  // namespace ferry::audit
