#include "services/planner/preview/grpc_git_host_lookup.h"

#include <utility>

#include "absl/time/clock.h"
#include "common/status/grpc_status.h"
#include "ferry/v1/repo_watcher.grpc.pb.h"

namespace ferry::planner {

GitHostCommenter::GitHostLookup GrpcGitHostLookup(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout) {
  std::shared_ptr<v1::RepoWatcher::Stub> stub = v1::RepoWatcher::NewStub(std::move(channel));
  return [stub, timeout](const std::string& repository_id) -> absl::StatusOr<v1::GitHost> {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    v1::GetRepositoryRequest request;
    request.set_id(repository_id);
    v1::Repository repo;
    grpc::Status status = stub->GetRepository(&context, request, &repo);
    if (!status.ok()) return FromGrpcStatus(status);
    return repo.git_host();
  };
}

}  // namespace ferry::planner
