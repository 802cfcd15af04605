#pragma once

#include <memory>

#include <grpcpp/grpcpp.h>

#include "ferry/v1/repo_watcher.grpc.pb.h"
#include "services/planner/preview/review_event_source.h"

namespace ferry::planner {

// ReviewEventSource over the repo-watcher's gRPC API. Thread-safe.
class GrpcReviewEventSource final : public ReviewEventSource {
 public:
  explicit GrpcReviewEventSource(std::shared_ptr<grpc::Channel> channel);
  std::unique_ptr<ReviewEventStream> WatchReviewEvents(const std::string& cursor) override;

 private:
  std::unique_ptr<v1::RepoWatcher::Stub> stub_;
};

}  // namespace ferry::planner
