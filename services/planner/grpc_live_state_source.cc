#include "services/planner/grpc_live_state_source.h"

#include <grpcpp/grpcpp.h>

#include "absl/time/clock.h"
#include "common/status/grpc_status.h"

namespace ferry::planner {

GrpcLiveStateSource::GrpcLiveStateSource(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout)
    : stub_(v1::Deployer::NewStub(std::move(channel))), timeout_(timeout) {}

absl::StatusOr<v1::LiveState> GrpcLiveStateSource::Observe(const std::string& application_id,
                                                           const std::string& environment_id,
                                                           const v1::DeployTarget& target,
                                                           const std::vector<v1::ObjectRef>& objects) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  v1::ObserveLiveStateRequest request;
  request.set_application_id(application_id);
  request.set_environment_id(environment_id);
  *request.mutable_target() = target;
  for (const auto& o : objects) *request.add_objects() = o;
  v1::ObserveLiveStateResponse response;
  grpc::Status s = stub_->ObserveLiveState(&context, request, &response);
  if (!s.ok()) return FromGrpcStatus(s);
  return response.state();
}

}  // namespace ferry::planner
