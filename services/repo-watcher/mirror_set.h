#pragma once

#include <map>
#include <memory>
#include <set>
#include <shared_mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "common/concurrency/mutex.h"
#include "common/git/git_repository.h"

namespace ferry::repo_watcher {

// The bare mirrors under the cache directory, one per repository id
// (<cache-dir>/<id>.git). Opening validates the mirror and rebuilds it when
// corrupt, missing or made for another URL. Thread-safe: readers and the
// poller share a repository's mirror; Remove() waits for them.
class MirrorSet {
 public:
  MirrorSet(git::Client* git, std::string cache_dir) : git_(git), cache_dir_(std::move(cache_dir)) {}

  // A handle on the mirror plus the shared lock that keeps it from being
  // removed or rebuilt while in use.
  struct Lease {
    std::shared_lock<std::shared_mutex> lock;
    std::unique_ptr<git::Repository> repo;
    bool rebuilt = false;
  };

  // Opens (creating or rebuilding as needed) the mirror of `id` for `url`.
  absl::StatusOr<Lease> Open(const std::string& id, const std::string& url);
  // Opens the mirror only if it exists and is valid (NOT_FOUND /
  // FAILED_PRECONDITION otherwise), for reading.
  absl::StatusOr<Lease> OpenForRead(const std::string& id, const std::string& url);
  // Deletes the mirror directory of `id`.
  void Remove(const std::string& id);

  // What this process has seen the mirror of `id` hold: a poll records the
  // tips it found there (or fetched), so that a later check that finds the
  // same tips need not open the mirror. Forgotten when the mirror is
  // removed or rebuilt, or when a reader finds it missing or unusable.
  void NoteHeld(const std::string& id, std::set<std::string> commits);
  bool Holds(const std::string& id, const std::set<std::string>& commits) const;

  std::string PathFor(const std::string& id) const { return cache_dir_ + "/" + id + ".git"; }

 private:
  std::shared_mutex& LockFor(const std::string& id);

  git::Client* git_;
  const std::string cache_dir_;
  mutable Mutex mu_;
  std::map<std::string, std::unique_ptr<std::shared_mutex>> locks_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::set<std::string>> held_ ABSL_GUARDED_BY(mu_);
  void Forget(const std::string& id);
};

}  // namespace ferry::repo_watcher
