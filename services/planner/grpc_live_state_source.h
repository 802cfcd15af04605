#pragma once

#include <memory>

#include <grpcpp/channel.h>

#include "absl/time/time.h"
#include "ferry/v1/deployer.grpc.pb.h"
#include "services/planner/live_state_source.h"

namespace ferry::planner {

// LiveStateSource over ferry.v1.Deployer/ObserveLiveState. Thread-safe.
class GrpcLiveStateSource final : public LiveStateSource {
 public:
  explicit GrpcLiveStateSource(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout = absl::Seconds(30));
  absl::StatusOr<v1::LiveState> Observe(const std::string& application_id, const std::string& environment_id,
                                        const v1::DeployTarget& target,
                                        const std::vector<v1::Manifest>& desired) override;

 private:
  std::unique_ptr<v1::Deployer::Stub> stub_;
  const absl::Duration timeout_;
};

}  // namespace ferry::planner
