#pragma once

#include <memory>

#include <grpcpp/channel.h>

#include "absl/time/time.h"
#include "ferry/v1/repo_watcher.grpc.pb.h"
#include "services/planner/check_source.h"

namespace ferry::planner {

// The repo-watcher's WatchReviewEvents from `cursor`, opened without waiting
// for a connection (an unreachable repo-watcher ends the stream at once with
// UNAVAILABLE, so a consumer reconnects with backoff and stops promptly).
// The checks (GrpcCheckSource) and the previews (GrpcReviewEventSource) use it.
std::unique_ptr<ReviewEventStream> OpenReviewEventStream(v1::RepoWatcher::Stub* stub, const std::string& cursor);

// CheckSource over ferry.v1.RepoWatcher (ListChecks, WatchReviewEvents).
// Thread-safe.
class GrpcCheckSource final : public CheckSource {
 public:
  explicit GrpcCheckSource(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout = absl::Seconds(10));

  absl::StatusOr<std::vector<v1::CommitCheck>> ListChecks(const std::string& repository_id,
                                                           const std::string& sha) override;
  std::unique_ptr<ReviewEventStream> WatchReviewEvents(const std::string& cursor) override;

 private:
  std::unique_ptr<v1::RepoWatcher::Stub> stub_;
  const absl::Duration timeout_;
};

}  // namespace ferry::planner
