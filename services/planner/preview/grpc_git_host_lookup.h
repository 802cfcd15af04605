#pragma once

#include <memory>

#include <grpcpp/grpcpp.h>

#include "services/planner/preview/git_host_commenter.h"

namespace ferry::planner {

// GitHostCommenter::GitHostLookup over the repo-watcher's GetRepository:
// the repository's git_host (its token a SecretRef, never a value).
GitHostCommenter::GitHostLookup GrpcGitHostLookup(std::shared_ptr<grpc::Channel> channel,
                                                  absl::Duration timeout = absl::Seconds(10));

}  // namespace ferry::planner
