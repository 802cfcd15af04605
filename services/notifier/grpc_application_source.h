#pragma once

#include <memory>

#include <grpcpp/channel.h>

#include "absl/time/time.h"
#include "ferry/v1/planner.grpc.pb.h"
#include "services/notifier/notifier_store.h"

namespace ferry::notifier {

// ApplicationSource over the planner's ListApplications (every page).
class GrpcApplicationSource final : public ApplicationSource {
 public:
  explicit GrpcApplicationSource(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout = absl::Seconds(30));
  absl::StatusOr<std::vector<v1::Application>> ListApplications() override;

 private:
  std::unique_ptr<v1::Planner::Stub> stub_;
  const absl::Duration timeout_;
};

}  // namespace ferry::notifier
