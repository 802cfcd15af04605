#include "services/deployer/deployer_service.h"

#include "common/server/handler.h"
#include "common/status/grpc_status.h"
#include "common/status/status_macros.h"
#include "services/deployer/deployment_state.h"

namespace ferry::deployer {
grpc::Status DeployerService::GetDeployment(grpc::ServerContext* ctx, const v1::GetDeploymentRequest* req,
                                            v1::Deployment* out) {
  return server::Handle(ctx, *req, out, [&] { return deployer_->GetDeployment(req->deployment_id()); });
}

grpc::Status DeployerService::DiffDeployments(grpc::ServerContext* ctx, const v1::DiffDeploymentsRequest* req,
                                              v1::DiffDeploymentsResponse* out) {
  return server::Handle(ctx, *req, out, [&] { return deployer_->DiffDeployments(*req); });
}

grpc::Status DeployerService::ListDeployments(grpc::ServerContext* ctx, const v1::ListDeploymentsRequest* req,
                                              v1::ListDeploymentsResponse* out) {
  return server::Handle(ctx, *req, out, [&] { return deployer_->ListDeployments(*req); });
}

grpc::Status DeployerService::WatchDeployment(grpc::ServerContext* ctx, const v1::WatchDeploymentRequest* req,
                                              grpc::ServerWriter<v1::WatchDeploymentResponse>* writer) {
  if (absl::Status bad = server::CheckRequest(*req); !bad.ok()) return ToGrpcStatus(bad);
  absl::StatusOr<auth::Principal> caller = server::Authorize(*ctx, *req);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  absl::StatusOr<server::StreamLimiter::Slot> slot = server::AcquireStream(watch_streams_, *ctx);
  if (!slot.ok()) return ToGrpcStatus(slot.status());
  // Subscribe before the snapshot so that nothing falls between them.
  auto sub = deployer_->notifier().Subscribe(req->deployment_id());
  struct Unsubscribe {
    Deployer* d;
    std::string id;
    std::shared_ptr<DeploymentNotifier::Subscription> s;
    ~Unsubscribe() { d->notifier().Unsubscribe(id, s); }
  } guard{deployer_, req->deployment_id(), sub};
  absl::StatusOr<v1::Deployment> snapshot = deployer_->GetDeployment(req->deployment_id());
  if (!snapshot.ok()) return ToGrpcStatus(snapshot.status());
  v1::WatchDeploymentResponse first;
  *first.mutable_deployment() = *snapshot;
  if (!writer->Write(first)) return grpc::Status::CANCELLED;
  bool done = IsTerminal(snapshot->state());
  while (!done) {
    v1::WatchDeploymentResponse ev;
    if (!sub->Next(&ev, absl::Seconds(1))) {
      if (ctx->IsCancelled()) return grpc::Status::CANCELLED;
      if (sub->closed()) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "deployer shutting down; watch again");
      continue;
    }
    if (!writer->Write(ev)) return grpc::Status::CANCELLED;
    if (ev.has_deployment() && IsTerminal(ev.deployment().state())) done = true;
  }
  return grpc::Status::OK;
}

grpc::Status DeployerService::Rollback(grpc::ServerContext* ctx, const v1::RollbackRequest* req, v1::RollbackResponse* out) {
  return server::Handle(ctx, *req, out, [&](const auth::Principal& caller) {
    return deployer_->Rollback(server::WithCallerAsActor(*req, caller));
  });
}

grpc::Status DeployerService::Pin(grpc::ServerContext* ctx, const v1::PinRequest* req, v1::PinResponse* out) {
  return server::Handle(ctx, *req, [&](const auth::Principal& caller) -> absl::Status {
    ASSIGN_OR_RETURN(*out->mutable_pin(), deployer_->Pin(server::WithCallerAsActor(*req, caller)));
    return absl::OkStatus();
  });
}

grpc::Status DeployerService::Unpin(grpc::ServerContext* ctx, const v1::UnpinRequest* req, v1::UnpinResponse* out) {
  return server::Handle(ctx, *req, [&](const auth::Principal& caller) -> absl::Status {
    ASSIGN_OR_RETURN(*out->mutable_pin(), deployer_->Unpin(server::WithCallerAsActor(*req, caller)));
    return absl::OkStatus();
  });
}

grpc::Status DeployerService::GetLiveState(grpc::ServerContext* ctx, const v1::GetLiveStateRequest* req,
                                           v1::LiveState* out) {
  return server::Handle(ctx, *req, out, [&] { return deployer_->GetLiveState(*req); });
}

grpc::Status DeployerService::ObserveLiveState(grpc::ServerContext* ctx, const v1::ObserveLiveStateRequest* req,
                                               v1::ObserveLiveStateResponse* out) {
  return server::Handle(ctx, *req, out, [&] { return deployer_->ObserveLiveState(*req, live_state_page_bytes_); });
}

grpc::Status DeployerService::GetDriftSettings(grpc::ServerContext* ctx, const v1::GetDriftSettingsRequest* req,
                                               v1::DriftSettings* out) {
  return server::Handle(ctx, *req, out, [&] {
    return deployer_->GetDriftSettings(req->application_id(), req->environment_id());
  });
}

grpc::Status DeployerService::UpdateDriftSettings(grpc::ServerContext* ctx, const v1::UpdateDriftSettingsRequest* req,
                                                  v1::DriftSettings* out) {
  return server::Handle(ctx, *req, out, [&] { return deployer_->UpdateDriftSettings(*req); });
}

}  // namespace ferry::deployer
