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
    if (!repo.ok()) return repo.status();
  }
  if (rebuilt) {
    Forget(id);
    logging::Warn("mirror was corrupt or stale and has been rebuilt", {{"repository", id}});
  }
  absl::StatusOr<Lease> lease = OpenForRead(id, url);
  if (!lease.ok()) return lease.status();
  lease->rebuilt = rebuilt;
  return lease;
}

absl::StatusOr<MirrorSet::Lease> MirrorSet::OpenForRead(const std::string& id, const std::string& url) {
  Lease lease;
  lease.lock = std::shared_lock<std::shared_mutex>(LockFor(id));
  absl::StatusOr<std::unique_ptr<git::Repository>> repo = git_->OpenExistingMirror(PathFor(id), url);
  if (!repo.ok()) {
    Forget(id);  // the next poll opens (and repairs) it
    return repo.status();
  }
  lease.repo = std::move(*repo);
  return lease;
}

void MirrorSet::Forget(const std::string& id) {
  MutexLock lock(&mu_);
  held_.erase(id);
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
  Forget(id);
  std::unique_lock<std::shared_mutex> exclusive(LockFor(id));
  std::error_code ec;
  std::filesystem::remove_all(PathFor(id), ec);
}

}  // namespace ferry::repo_watcher
