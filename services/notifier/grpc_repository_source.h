#pragma once

#include <memory>

#include <grpcpp/channel.h>

#include "absl/time/time.h"
#include "ferry/v1/repo_watcher.grpc.pb.h"
#include "services/notifier/notifier_store.h"

namespace ferry::notifier {

// RepositorySource over the repo-watcher's GetRepository.
class GrpcRepositorySource final : public RepositorySource {
 public:
  explicit GrpcRepositorySource(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout = absl::Seconds(30));
  absl::StatusOr<v1::GitHost> GitHostOf(const std::string& repository_id) override;

 private:
  std::unique_ptr<v1::RepoWatcher::Stub> stub_;
  const absl::Duration timeout_;
};

}  // namespace ferry::notifier
