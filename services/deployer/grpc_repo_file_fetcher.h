#pragma once

#include <memory>

#include <grpcpp/grpcpp.h>

#include "ferry/v1/planner.pb.h"
#include "ferry/v1/repo_watcher.grpc.pb.h"
#include "services/deployer/target.h"

namespace ferry::deployer {

// Reads files of an application's folder (ConfigFile contentFrom) from the
// repo-watcher at the plan's target revision, through ReadContent. The
// folder is the one holding the manifest that refers to the file.
// Thread-safe.
class GrpcRepoFileFetcher {
 public:
  explicit GrpcRepoFileFetcher(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout = absl::Seconds(30));

  // A FileFetcher bound to `plan`'s repository and commit.
  FileFetcher ForPlan(const v1::Plan& plan);

 private:
  absl::StatusOr<std::string> Read(const std::string& repository, const std::string& commit, const std::string& path);

  std::unique_ptr<v1::RepoWatcher::Stub> stub_;
  const absl::Duration timeout_;
};

}  // namespace ferry::deployer
