#include "services/planner/preview/grpc_review_event_source.h"

#include <utility>

#include "common/status/grpc_status.h"

namespace ferry::planner {
namespace {

class GrpcReviewEventStream final : public ReviewEventStream {
 public:
  GrpcReviewEventStream(v1::RepoWatcher::Stub* stub, const std::string& cursor) {
    v1::WatchReviewEventsRequest request;
    request.set_cursor(cursor);
    context_.set_wait_for_ready(true);
    reader_ = stub->WatchReviewEvents(&context_, request);
  }
  bool Next(v1::WatchReviewEventsResponse* event) override { return reader_->Read(event); }
  void Cancel() override { context_.TryCancel(); }
  absl::Status Finish() override { return FromGrpcStatus(reader_->Finish()); }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::WatchReviewEventsResponse>> reader_;
};

}  // namespace

GrpcReviewEventSource::GrpcReviewEventSource(std::shared_ptr<grpc::Channel> channel)
    : stub_(v1::RepoWatcher::NewStub(std::move(channel))) {}

std::unique_ptr<ReviewEventStream> GrpcReviewEventSource::WatchReviewEvents(const std::string& cursor) {
  return std::make_unique<GrpcReviewEventStream>(stub_.get(), cursor);
}

}  // namespace ferry::planner
