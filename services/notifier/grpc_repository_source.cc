#include "services/notifier/grpc_repository_source.h"

#include <grpcpp/grpcpp.h>

#include "absl/time/clock.h"
#include "common/status/grpc_status.h"

namespace ferry::notifier {

GrpcRepositorySource::GrpcRepositorySource(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout)
    : stub_(v1::RepoWatcher::NewStub(std::move(channel))), timeout_(timeout) {}

absl::StatusOr<v1::GitHost> GrpcRepositorySource::GitHostOf(const std::string& repository_id) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  v1::GetRepositoryRequest req;
  req.set_id(repository_id);
  v1::Repository repo;
  grpc::Status st = stub_->GetRepository(&context, req, &repo);
  if (!st.ok()) return FromGrpcStatus(st);
  return repo.git_host();
}

}  // namespace ferry::notifier
