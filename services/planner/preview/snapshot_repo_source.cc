#include "services/planner/preview/snapshot_repo_source.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"

namespace ferry::planner {

SnapshotRepoSource::SnapshotRepoSource(RepoSource* inner, size_t max_commits, size_t max_blob_bytes)
    : inner_(inner), max_commits_(std::max<size_t>(1, max_commits)), max_blob_bytes_(max_blob_bytes) {}

int SnapshotRepoSource::inner_reads() const {
  MutexLock lock(&mu_);
  return inner_reads_;
}

absl::StatusOr<std::shared_ptr<const std::vector<TreeEntry>>> SnapshotRepoSource::Listing(
    const std::string& repository_id, const std::string& commit) {
  const std::string key = absl::StrCat(repository_id, "\n", commit);
  {
    MutexLock lock(&mu_);
    if (auto it = listings_.find(key); it != listings_.end()) return it->second;
    ++inner_reads_;
  }
  // Outside the lock: two callers may list the same commit at once; the
  // second result replaces the first, which is equal.
  absl::StatusOr<std::vector<TreeEntry>> all = inner_->ReadTree(repository_id, commit, "", true);
  std::vector<TreeEntry> entries;
  if (all.ok()) {
    entries = std::move(*all);
  } else if (!absl::IsNotFound(all.status())) {
    return all.status();
  } else {
    // An empty tree lists nothing; an unknown commit is an error. The
    // repo-watcher says NOT_FOUND for both: CheckRevision tells them apart.
    absl::StatusOr<v1::CheckRevisionResponse> known = inner_->CheckRevision(repository_id, commit);
    if (!known.ok()) return known.status();
  }
  std::sort(entries.begin(), entries.end(), [](const TreeEntry& a, const TreeEntry& b) { return a.path < b.path; });
  auto listing = std::make_shared<const std::vector<TreeEntry>>(std::move(entries));
  MutexLock lock(&mu_);
  if (!listings_.count(key)) {
    listing_order_.push_back(key);
    while (listing_order_.size() > max_commits_) {
      listings_.erase(listing_order_.front());
      listing_order_.pop_front();
    }
  }
  listings_[key] = listing;
  return listing;
}

absl::StatusOr<std::vector<TreeEntry>> SnapshotRepoSource::ReadTree(const std::string& repository_id,
                                                                    const std::string& commit, const std::string& path,
                                                                    bool metadata_only) {
  ASSIGN_OR_RETURN(std::shared_ptr<const std::vector<TreeEntry>> listing, Listing(repository_id, commit));
  std::vector<TreeEntry> out;
  if (path.empty()) {
    out = *listing;
  } else {
    // The entry `path` itself (a file), then everything under "path/":
    // both ranges are contiguous in path order.
    auto by_path = [](const TreeEntry& e, const std::string& p) { return e.path < p; };
    auto exact = std::lower_bound(listing->begin(), listing->end(), path, by_path);
    if (exact != listing->end() && exact->path == path) out.push_back(*exact);
    const std::string prefix = path + "/";
    for (auto it = std::lower_bound(listing->begin(), listing->end(), prefix, by_path);
         it != listing->end() && absl::StartsWith(it->path, prefix); ++it)
      out.push_back(*it);
  }
  if (out.empty()) return absl::NotFoundError(absl::StrCat("path \"", path, "\" not found at ", commit));
  if (metadata_only) return out;
  bool complete = true;
  {
    MutexLock lock(&mu_);
    for (TreeEntry& e : out) {
      if (e.type != v1::CONTENT_ENTRY_TYPE_FILE) continue;
      auto it = blobs_.find(e.blob_sha);
      if (it == blobs_.end()) {
        complete = false;
        break;
      }
      e.data = it->second;
    }
    if (!complete) ++inner_reads_;
  }
  if (complete) return out;
  ASSIGN_OR_RETURN(std::vector<TreeEntry> read, inner_->ReadTree(repository_id, commit, path, false));
  MutexLock lock(&mu_);
  for (const TreeEntry& e : read) {
    if (e.type != v1::CONTENT_ENTRY_TYPE_FILE || e.data.size() > max_blob_bytes_ / 4 || blobs_.count(e.blob_sha))
      continue;
    blobs_[e.blob_sha] = e.data;
    blob_order_.push_back(e.blob_sha);
    blob_bytes_ += e.data.size();
    while (blob_bytes_ > max_blob_bytes_ && !blob_order_.empty()) {
      auto it = blobs_.find(blob_order_.front());
      blob_bytes_ -= it->second.size();
      blobs_.erase(it);
      blob_order_.pop_front();
    }
  }
  return read;
}

}  // namespace ferry::planner
