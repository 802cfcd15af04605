#include "services/notifier/grpc_application_source.h"

#include <grpcpp/grpcpp.h>

#include "absl/time/clock.h"
#include "common/status/grpc_status.h"

namespace ferry::notifier {

GrpcApplicationSource::GrpcApplicationSource(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout)
    : stub_(v1::Planner::NewStub(std::move(channel))), timeout_(timeout) {}

absl::StatusOr<std::vector<v1::Application>> GrpcApplicationSource::ListApplications() {
  std::vector<v1::Application> out;
  v1::ListApplicationsRequest req;
  req.set_page_size(1000);
  for (int page = 0; page < 100000; ++page) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
    v1::ListApplicationsResponse resp;
    grpc::Status st = stub_->ListApplications(&context, req, &resp);
    if (!st.ok()) return FromGrpcStatus(st);
    for (v1::Application& a : *resp.mutable_applications()) out.push_back(std::move(a));
    if (resp.next_page_token().empty()) return out;
    req.set_page_token(resp.next_page_token());
  }
  return absl::UnavailableError("the planner's ListApplications did not end");
}

}  // namespace ferry::notifier
