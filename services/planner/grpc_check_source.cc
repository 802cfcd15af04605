#include "services/planner/grpc_check_source.h"

#include <grpcpp/grpcpp.h>

#include "absl/time/clock.h"
#include "common/status/grpc_status.h"

namespace ferry::planner {
namespace {

class GrpcReviewEventStream final : public ReviewEventStream {
 public:
  GrpcReviewEventStream(v1::RepoWatcher::Stub* stub, const std::string& cursor) {
    v1::WatchReviewEventsRequest request;
    request.set_cursor(cursor);
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

GrpcCheckSource::GrpcCheckSource(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout)
    : stub_(v1::RepoWatcher::NewStub(std::move(channel))), timeout_(timeout) {}

absl::StatusOr<std::vector<v1::CommitCheck>> GrpcCheckSource::ListChecks(const std::string& repository_id,
                                                                         const std::string& sha) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  context.set_wait_for_ready(true);
  v1::ListChecksRequest request;
  request.set_repository_id(repository_id);
  request.set_sha(sha);
  v1::ListChecksResponse response;
  grpc::Status s = stub_->ListChecks(&context, request, &response);
  if (!s.ok()) return FromGrpcStatus(s);
  return std::vector<v1::CommitCheck>(response.checks().begin(), response.checks().end());
}

std::unique_ptr<ReviewEventStream> OpenReviewEventStream(v1::RepoWatcher::Stub* stub, const std::string& cursor) {
  return std::make_unique<GrpcReviewEventStream>(stub, cursor);
}

std::unique_ptr<ReviewEventStream> GrpcCheckSource::WatchReviewEvents(const std::string& cursor) {
  return OpenReviewEventStream(stub_.get(), cursor);
}

}  // namespace ferry::planner
