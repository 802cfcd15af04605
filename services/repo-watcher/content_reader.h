#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "ferry/v1/repo_watcher.pb.h"
#include "services/repo-watcher/mirror_set.h"
#include "services/repo-watcher/repository_store.h"

namespace ferry::repo_watcher {

// The server's limits on one ReadContent call. A request may ask for lower
// file and total limits (max_file_bytes, max_total_bytes); 0 or anything
// higher gets these (clamped, not refused: a caller asking for more than the
// server allows is served within the server's limit and told which limit
// and flag stopped it when a file is over it).
struct ContentLimits {
  int64_t max_file_bytes = 10 << 20;    // --read-content-max-file-bytes
  int64_t max_total_bytes = 100 << 20;  // --read-content-max-total-bytes
  int64_t max_entries = 100000;         // --read-content-max-entries (files, symlinks, submodules)
  int64_t chunk_bytes = 1 << 20;
};

// Reads the files under a path at a commit from a repository's mirror.
// Symlinks are reported with their stored target and never followed;
// submodules are reported without content. Thread-safe.
class ContentReader {
 public:
  // Called for each chunk in order; returns false when the client is gone.
  using Sink = std::function<bool(const v1::ReadContentResponse&)>;

  // Asked for a commit this replica's mirror lacks: fetches it when it is
  // an open pull request's (PullRequestTracker::FetchForCommit) and says
  // whether it did.
  using FetchMissing = std::function<absl::StatusOr<bool>(const v1::Repository&, const std::string& sha)>;

  ContentReader(RepositoryStore* store, MirrorSet* mirrors, ContentLimits limits = {},
                FetchMissing fetch_missing = nullptr)
      : store_(store), mirrors_(mirrors), limits_(limits), fetch_missing_(std::move(fetch_missing)) {}

  // INVALID_ARGUMENT for a path with "..", an absolute path, a bad commit
  // sha or negative limits; NOT_FOUND for an unknown repository, commit or
  // path; RESOURCE_EXHAUSTED naming the file, the limit and (for a server
  // limit) its flag when a limit would be exceeded (checked before anything
  // is sent); CANCELLED when the sink refuses. A commit missing from this
  // replica's mirror that is an open pull request's head or target is
  // fetched first (`fetch_missing`): any replica serves a pull request, not
  // only the one that received its webhook.
  absl::Status Read(const v1::ReadContentRequest& request, const Sink& sink);

 private:
  RepositoryStore* store_;
  MirrorSet* mirrors_;
  const ContentLimits limits_;
  const FetchMissing fetch_missing_;
};

// Validates a repository-relative path: no "..", not absolute, no empty or
// "." components, no NUL. Returns it without a trailing "/".
absl::StatusOr<std::string> NormalizeContentPath(const std::string& path);

}  // namespace ferry::repo_watcher
