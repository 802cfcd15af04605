#pragma once

#include <memory>

#include <grpcpp/channel.h>

#include "absl/time/time.h"
#include "ferry/v1/deployer.grpc.pb.h"
#include "services/planner/live_state_source.h"

namespace ferry::planner {

// LiveStateSource over ferry.v1.Deployer/ObserveLiveState. The desired
// manifests travel whole (for the deployer's dry run) up to 2 MiB per
// request; a Kubernetes application past that is observed once more per
// further 2 MiB of manifests, each time with the next ones whole, and each
// object's dry run taken from the request that carried it (so big
// applications diff like the cluster will too). Thread-safe.
class GrpcLiveStateSource final : public LiveStateSource {
 public:
  explicit GrpcLiveStateSource(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout = absl::Seconds(30));
  absl::StatusOr<v1::LiveState> Observe(const std::string& application_id, const std::string& environment_id,
                                        const v1::DeployTarget& target,
                                        const std::vector<v1::Manifest>& desired) override;

 private:
  // One observation, all its pages merged.
  absl::StatusOr<v1::LiveState> ObservePages(v1::ObserveLiveStateRequest request, size_t objects);

  std::unique_ptr<v1::Deployer::Stub> stub_;
  const absl::Duration timeout_;
};

}  // namespace ferry::planner
