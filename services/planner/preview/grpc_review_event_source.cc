#include "services/planner/preview/grpc_review_event_source.h"

#include <utility>

#include "services/planner/grpc_check_source.h"

namespace ferry::planner {

GrpcReviewEventSource::GrpcReviewEventSource(std::shared_ptr<grpc::Channel> channel)
    : stub_(v1::RepoWatcher::NewStub(std::move(channel))) {}

std::unique_ptr<ReviewEventStream> GrpcReviewEventSource::WatchReviewEvents(const std::string& cursor) {
  return OpenReviewEventStream(stub_.get(), cursor);
}

}  // namespace ferry::planner
