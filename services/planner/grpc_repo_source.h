#pragma once

#include <memory>

#include <grpcpp/channel.h>

#include "absl/time/time.h"
#include "ferry/v1/repo_watcher.grpc.pb.h"
#include "services/planner/repo_source.h"

namespace ferry::planner {

// RepoSource over ferry.v1.RepoWatcher (ReadContent, GetRepositoryStatus,
// CheckRevision, WatchRevisions). Thread-safe.
class GrpcRepoSource final : public RepoSource {
 public:
  explicit GrpcRepoSource(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout = absl::Seconds(60));

  absl::StatusOr<std::vector<TreeEntry>> ReadTree(const std::string& repository_id, const std::string& commit,
                                                  const std::string& path, bool metadata_only) override;
  // ReadContent with metadata_only and data_up_to_total_bytes: the data came
  // when every file's data has its size (a repo-watcher without the field
  // sends none).
  absl::StatusOr<Listing> ReadListing(const std::string& repository_id, const std::string& commit,
                                      const std::string& path, int64_t max_data_bytes) override;
  absl::StatusOr<std::string> ResolveRef(const std::string& repository_id, const std::string& ref) override;
  absl::StatusOr<v1::CheckRevisionResponse> CheckRevision(const std::string& repository_id,
                                                          const std::string& commit) override;
  std::unique_ptr<RevisionStream> WatchRevisions(const std::string& cursor) override;

 private:
  // One ReadContent of `request`; the sizes the entries declared, in `sizes`.
  absl::StatusOr<std::vector<TreeEntry>> Read(const v1::ReadContentRequest& request, std::vector<int64_t>* sizes);

  std::unique_ptr<v1::RepoWatcher::Stub> stub_;
  const absl::Duration timeout_;
};

}  // namespace ferry::planner
