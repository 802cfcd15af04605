#pragma once

#include <cstdint>
#include <list>
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
  // removed or rebuilt while in use. The handle goes back to the set when
  // the lease ends, for the next read of the same mirror (see idle_).
  struct Lease {
    Lease() = default;
    Lease(Lease&&) = default;
    Lease& operator=(Lease&&) = default;
    ~Lease();

    std::shared_lock<std::shared_mutex> lock;
    std::unique_ptr<git::Repository> repo;
    bool rebuilt = false;

   private:
    friend class MirrorSet;
    MirrorSet* owner = nullptr;
    std::string id;
    std::string url;
    uint64_t generation = 0;
  };

  // Opened handles kept for reuse, across mirrors, at most.
  static constexpr size_t kIdleHandles = 8;

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
  // An idle handle of `id` opened for `url` since its last rebuild, or null.
  std::unique_ptr<git::Repository> TakeIdle(const std::string& id, const std::string& url, uint64_t* generation);
  void GiveBack(Lease& lease);
  // The mirror of `id` is rebuilt, removed, or found missing or unusable:
  // its idle handles are dropped, those in use are not taken back, and what
  // it was seen to hold is forgotten.
  void Forget(const std::string& id);

  git::Client* git_;
  const std::string cache_dir_;
  mutable Mutex mu_;
  std::map<std::string, std::unique_ptr<std::shared_mutex>> locks_ ABSL_GUARDED_BY(mu_);
  // Handles of finished leases, newest first. Each keeps libgit2's object
  // cache: a monorepo's big folder tree is parsed once, not at every read
  // (issue #23: opening the mirror afresh for each ReadContent parsed the
  // 330 KiB tree of a 10,000-application folder every time, 2.4 ms a read,
  // so reading every application grew with the square of their number).
  struct Idle {
    std::string id;
    std::string url;
    uint64_t generation;
    std::unique_ptr<git::Repository> repo;
  };
  std::list<Idle> idle_ ABSL_GUARDED_BY(mu_);
  // Per id, bumped by a rebuild or removal.
  std::map<std::string, uint64_t> generation_ ABSL_GUARDED_BY(mu_);
  // What NoteHeld recorded, per id.
  std::map<std::string, std::set<std::string>> held_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::repo_watcher
