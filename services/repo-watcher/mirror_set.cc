#include "services/repo-watcher/mirror_set.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/logging/logger.h"

namespace ferry::repo_watcher {

std::shared_mutex& MirrorSet::LockFor(const std::string& id) {
  MutexLock lock(&mu_);
  auto& slot = locks_[id];
  if (slot == nullptr) slot = std::make_unique<std::shared_mutex>();
  return *slot;
}

absl::StatusOr<MirrorSet::Lease> MirrorSet::Open(const std::string& id, const std::string& url) {
  absl::StatusOr<Lease> existing = OpenForRead(id, url);
  if (existing.ok()) return existing;
  std::shared_mutex& m = LockFor(id);
  bool rebuilt = false;
  {
    std::unique_lock<std::shared_mutex> exclusive(m);
    absl::StatusOr<std::unique_ptr<git::Repository>> repo = git_->OpenMirror(PathFor(id), url, &rebuilt);
    // Handles on what was there before are not reused (nor any of a
    // mirror that failed to open).
    if (rebuilt || !repo.ok()) Forget(id);
    if (!repo.ok()) return repo.status();
  }
  if (rebuilt) logging::Warn("mirror was corrupt or stale and has been rebuilt", {{"repository", id}});
  absl::StatusOr<Lease> lease = OpenForRead(id, url);
  if (!lease.ok()) return lease.status();
  lease->rebuilt = rebuilt;
  return lease;
}

MirrorSet::Lease::~Lease() {
  if (owner != nullptr && repo != nullptr) owner->GiveBack(*this);
}

absl::StatusOr<MirrorSet::Lease> MirrorSet::OpenForRead(const std::string& id, const std::string& url) {
  Lease lease;
  lease.lock = std::shared_lock<std::shared_mutex>(LockFor(id));
  uint64_t generation = 0;
  lease.repo = TakeIdle(id, url, &generation);
  // An idle handle outlives its folder when someone removed the folder
  // under it: open afresh, which fails and forgets the mirror, so that the
  // next poll repairs it instead of trusting what it was seen to hold.
  if (lease.repo != nullptr && !std::filesystem::exists(PathFor(id))) lease.repo.reset();
  if (lease.repo == nullptr) {
    absl::StatusOr<std::unique_ptr<git::Repository>> repo = git_->OpenExistingMirror(PathFor(id), url);
    if (!repo.ok()) {
      Forget(id);  // the next poll opens (and repairs) it
      return repo.status();
    }
    lease.repo = std::move(*repo);
  }
  lease.owner = this;
  lease.id = id;
  lease.url = url;
  lease.generation = generation;
  return lease;
}

std::unique_ptr<git::Repository> MirrorSet::TakeIdle(const std::string& id, const std::string& url,
                                                     uint64_t* generation) {
  MutexLock lock(&mu_);
  *generation = generation_[id];
  for (auto it = idle_.begin(); it != idle_.end(); ++it) {
    if (it->id != id || it->url != url || it->generation != *generation) continue;
    std::unique_ptr<git::Repository> repo = std::move(it->repo);
    idle_.erase(it);
    return repo;
  }
  return nullptr;
}

void MirrorSet::GiveBack(Lease& lease) {
  std::unique_ptr<git::Repository> dropped;  // closed outside the lock
  MutexLock lock(&mu_);
  if (generation_[lease.id] != lease.generation) return;  // rebuilt or removed meanwhile
  idle_.push_front(Idle{lease.id, lease.url, lease.generation, std::move(lease.repo)});
  if (idle_.size() > kIdleHandles) {
    dropped = std::move(idle_.back().repo);
    idle_.pop_back();
  }
}

void MirrorSet::Forget(const std::string& id) {
  std::list<Idle> dropped;  // closed outside the lock
  MutexLock lock(&mu_);
  ++generation_[id];
  held_.erase(id);
  for (auto it = idle_.begin(); it != idle_.end();) {
    if (it->id == id) {
      dropped.splice(dropped.end(), idle_, it++);
    } else {
      ++it;
    }
  }
}

void MirrorSet::NoteHeld(const std::string& id, std::set<std::string> commits) {
  MutexLock lock(&mu_);
  held_[id] = std::move(commits);
}

bool MirrorSet::Holds(const std::string& id, const std::set<std::string>& commits) const {
  MutexLock lock(&mu_);
  auto it = held_.find(id);
  if (it == held_.end()) return false;
  for (const std::string& c : commits) {
    if (it->second.count(c) == 0) return false;
  }
  return true;
}

void MirrorSet::Remove(const std::string& id) {
  std::unique_lock<std::shared_mutex> exclusive(LockFor(id));
  Forget(id);
  std::error_code ec;
  std::filesystem::remove_all(PathFor(id), ec);
}

}  // namespace ferry::repo_watcher
