#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "common/concurrency/mutex.h"
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
                FetchMissing fetch_missing = nullptr, const Clock* clock = nullptr)
      : store_(store),
        mirrors_(mirrors),
        limits_(limits),
        fetch_missing_(std::move(fetch_missing)),
        clock_(clock != nullptr ? clock : &system_clock_) {}

  // INVALID_ARGUMENT for a path with "..", an absolute path, a bad commit
  // sha or negative limits; NOT_FOUND for an unknown repository, commit or
  // path; RESOURCE_EXHAUSTED naming the file, the limit and (for a server
  // limit) its flag when a limit would be exceeded (checked before anything
  // is sent); CANCELLED when the sink refuses. A commit missing from this
  // replica's mirror that is an open pull request's head or target is
  // fetched first (`fetch_missing`): any replica serves a pull request, not
  // only the one that received its webhook.
  absl::Status Read(const v1::ReadContentRequest& request, const Sink& sink);

  // Drops what is kept of `id` (changed or deleted on this replica).
  void Forget(const std::string& id);

  // How long a repository as read serves further reads. A read uses its id
  // and URL to find the mirror; the content it serves is the commit's,
  // addressed by its sha, whatever changed meanwhile (a deleted
  // repository's mirror goes with it). Issue #23: a commit touching 1,000
  // applications of a monorepo was read 2,650 times, each read asking the
  // store for the repository first.
  static constexpr absl::Duration kRepositoryKept = absl::Seconds(1);

 private:
  absl::StatusOr<v1::Repository> Repository(const std::string& id);

  RepositoryStore* store_;
  MirrorSet* mirrors_;
  const ContentLimits limits_;
  const FetchMissing fetch_missing_;
  SystemClock system_clock_;
  const Clock* const clock_;
  Mutex mu_;
  std::map<std::string, std::pair<v1::Repository, absl::Time>> recent_ ABSL_GUARDED_BY(mu_);  // id -> (read, when)
};

// Validates a repository-relative path: no "..", not absolute, no empty or
// "." components, no NUL. Returns it without a trailing "/".
absl::StatusOr<std::string> NormalizeContentPath(const std::string& path);

}  // namespace ferry::repo_watcher
