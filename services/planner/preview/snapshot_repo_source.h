#pragma once

#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/concurrency/mutex.h"
#include "services/planner/repo_source.h"

namespace ferry::planner {

// One job: answering ReadTree for whole commits from memory, for the blast
// radius of a pull request, which lists the inputs of every application at
// two commits. The first question about a commit lists its whole tree once
// (metadata only) from `inner`; every metadata listing of that commit is
// then a range of that listing. File contents are fetched from `inner` on
// demand and kept by blob id (a content hash), so a file shared by many
// applications (a Kustomize base) or equal at both commits is read once.
// Bounded: the listings of the last `max_commits` commits and at most
// `max_blob_bytes` of contents (dropped, oldest first, beyond that).
// Revisions and refs pass through to `inner`. Thread-safe.
class SnapshotRepoSource final : public RepoSource {
 public:
  explicit SnapshotRepoSource(RepoSource* inner, size_t max_commits = 8, size_t max_blob_bytes = 64 << 20);

  absl::StatusOr<std::vector<TreeEntry>> ReadTree(const std::string& repository_id, const std::string& commit,
                                                  const std::string& path, bool metadata_only) override;
  absl::StatusOr<std::string> ResolveRef(const std::string& repository_id, const std::string& ref) override {
    return inner_->ResolveRef(repository_id, ref);
  }
  absl::StatusOr<v1::CheckRevisionResponse> CheckRevision(const std::string& repository_id,
                                                          const std::string& commit) override {
    return inner_->CheckRevision(repository_id, commit);
  }
  std::unique_ptr<RevisionStream> WatchRevisions(const std::string& cursor) override {
    return inner_->WatchRevisions(cursor);
  }

  // Every entry of the commit's tree, in path order (cached).
  absl::StatusOr<std::shared_ptr<const std::vector<TreeEntry>>> Listing(const std::string& repository_id,
                                                                        const std::string& commit);

  // Calls made to `inner` so far (for tests and the bench).
  int inner_reads() const;

 private:
  using Listing_ = std::shared_ptr<const std::vector<TreeEntry>>;

  RepoSource* const inner_;
  const size_t max_commits_;
  const size_t max_blob_bytes_;
  mutable Mutex mu_;
  std::map<std::string, Listing_> listings_ ABSL_GUARDED_BY(mu_);  // "<repository>\n<commit>"
  std::deque<std::string> listing_order_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> blobs_ ABSL_GUARDED_BY(mu_);  // blob id -> content
  std::deque<std::string> blob_order_ ABSL_GUARDED_BY(mu_);
  size_t blob_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int inner_reads_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ferry::planner
