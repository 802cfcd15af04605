#include "services/deployer/deployer_service.h"

#include "common/status/grpc_status.h"
#include "common/status/nul_free.h"

namespace ferry::deployer {
namespace {

template <typename T, typename Out>
grpc::Status Reply(absl::StatusOr<T> r, Out* out) {
  if (!r.ok()) return ToGrpcStatus(r.status());
  *out = std::move(*r);
  return grpc::Status::OK;
}

bool IsTerminal(v1::DeploymentState s) {
  return s == v1::DEPLOYMENT_STATE_SUCCEEDED || s == v1::DEPLOYMENT_STATE_FAILED ||
         s == v1::DEPLOYMENT_STATE_ROLLED_BACK;
}

}  // namespace

grpc::Status DeployerService::GetDeployment(grpc::ServerContext*, const v1::GetDeploymentRequest* req,
                                            v1::Deployment* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  return Reply(deployer_->GetDeployment(req->deployment_id()), out);
}

grpc::Status DeployerService::ListDeployments(grpc::ServerContext*, const v1::ListDeploymentsRequest* req,
                                              v1::ListDeploymentsResponse* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  return Reply(deployer_->ListDeployments(*req), out);
}

grpc::Status DeployerService::WatchDeployment(grpc::ServerContext* ctx, const v1::WatchDeploymentRequest* req,
                                              grpc::ServerWriter<v1::WatchDeploymentResponse>* writer) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
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

grpc::Status DeployerService::Rollback(grpc::ServerContext*, const v1::RollbackRequest* req, v1::RollbackResponse* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  return Reply(deployer_->Rollback(*req), out);
}

grpc::Status DeployerService::Pin(grpc::ServerContext*, const v1::PinRequest* req, v1::PinResponse* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  absl::StatusOr<v1::PinState> pin = deployer_->Pin(*req);
  if (!pin.ok()) return ToGrpcStatus(pin.status());
  *out->mutable_pin() = *pin;
  return grpc::Status::OK;
}

grpc::Status DeployerService::Unpin(grpc::ServerContext*, const v1::UnpinRequest* req, v1::UnpinResponse* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  absl::StatusOr<v1::PinState> pin = deployer_->Unpin(*req);
  if (!pin.ok()) return ToGrpcStatus(pin.status());
  *out->mutable_pin() = *pin;
  return grpc::Status::OK;
}

grpc::Status DeployerService::GetLiveState(grpc::ServerContext*, const v1::GetLiveStateRequest* req,
                                           v1::LiveState* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  return Reply(deployer_->GetLiveState(*req), out);
}

grpc::Status DeployerService::ObserveLiveState(grpc::ServerContext*, const v1::ObserveLiveStateRequest* req,
                                               v1::ObserveLiveStateResponse* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  absl::StatusOr<v1::LiveState> state = deployer_->ObserveLiveState(*req);
  if (!state.ok()) return ToGrpcStatus(state.status());
  *out->mutable_state() = *state;
  return grpc::Status::OK;
}

grpc::Status DeployerService::GetDriftSettings(grpc::ServerContext*, const v1::GetDriftSettingsRequest* req,
                                               v1::DriftSettings* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  return Reply(deployer_->GetDriftSettings(req->application_id(), req->environment_id()), out);
}

grpc::Status DeployerService::UpdateDriftSettings(grpc::ServerContext*, const v1::UpdateDriftSettingsRequest* req,
                                                  v1::DriftSettings* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  return Reply(deployer_->UpdateDriftSettings(*req), out);
}

}  // namespace ferry::deployer
