#pragma once

#include "common/server/stream_limiter.h"
#include "ferry/v1/deployer.grpc.pb.h"
#include "services/deployer/deployer.h"

namespace ferry::deployer {

// gRPC handlers of ferry.v1.Deployer: translate, delegate to Deployer, map
// the status. WatchDeployment streams from the in-process notifier and ends
// at a terminal state, on client cancel, or at shutdown; each holds a slot of
// `watch_streams` (null: unlimited) while open. ObserveLiveState pages hold
// about `live_state_page_bytes` (--live-state-page-bytes).
class DeployerService final : public v1::Deployer::Service {
 public:
  explicit DeployerService(Deployer* deployer, server::StreamLimiter* watch_streams = nullptr,
                           size_t live_state_page_bytes = LiveStateObserver::kDefaultPageBytes)
      : deployer_(deployer), watch_streams_(watch_streams), live_state_page_bytes_(live_state_page_bytes) {}

  grpc::Status GetDeployment(grpc::ServerContext*, const v1::GetDeploymentRequest* req, v1::Deployment* out) override;
  grpc::Status ListDeployments(grpc::ServerContext*, const v1::ListDeploymentsRequest* req,
                               v1::ListDeploymentsResponse* out) override;
  grpc::Status DiffDeployments(grpc::ServerContext*, const v1::DiffDeploymentsRequest* req,
                               v1::DiffDeploymentsResponse* out) override;
  grpc::Status WatchDeployment(grpc::ServerContext* ctx, const v1::WatchDeploymentRequest* req,
                               grpc::ServerWriter<v1::WatchDeploymentResponse>* writer) override;
  grpc::Status Rollback(grpc::ServerContext*, const v1::RollbackRequest* req, v1::RollbackResponse* out) override;
  grpc::Status Pin(grpc::ServerContext*, const v1::PinRequest* req, v1::PinResponse* out) override;
  grpc::Status Unpin(grpc::ServerContext*, const v1::UnpinRequest* req, v1::UnpinResponse* out) override;
  grpc::Status GetLiveState(grpc::ServerContext*, const v1::GetLiveStateRequest* req, v1::LiveState* out) override;
  grpc::Status ObserveLiveState(grpc::ServerContext*, const v1::ObserveLiveStateRequest* req,
                                v1::ObserveLiveStateResponse* out) override;
  grpc::Status GetDriftSettings(grpc::ServerContext*, const v1::GetDriftSettingsRequest* req,
                                v1::DriftSettings* out) override;
  grpc::Status UpdateDriftSettings(grpc::ServerContext*, const v1::UpdateDriftSettingsRequest* req,
                                   v1::DriftSettings* out) override;

 private:
  Deployer* deployer_;
  server::StreamLimiter* const watch_streams_;
  const size_t live_state_page_bytes_;
};

}  // namespace ferry::deployer
