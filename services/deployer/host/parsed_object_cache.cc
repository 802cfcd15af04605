#include "services/deployer/host/parsed_object_cache.h"

#include <utility>

namespace ferry::deployer::host {

absl::StatusOr<std::shared_ptr<const HostObject>> ParsedObjectCache::Parse(const std::string& json,
                                                                           const std::string& source_path) {
  {
    ferry::MutexLock l(&mu_);
    auto it = by_json_.find(json);
    if (it != by_json_.end() && it->second.source_path == source_path) return it->second.object;
  }
  // Parsed outside the lock: two threads may both parse one object, and the
  // later one's result replaces an equal one.
  absl::StatusOr<HostObject> parsed = ParseHostObject(json, source_path);
  if (!parsed.ok()) return parsed.status();
  auto object = std::make_shared<const HostObject>(*std::move(parsed));
  const size_t size = json.size() + source_path.size();
  if (size > max_bytes_) return object;
  ferry::MutexLock l(&mu_);
  auto it = by_json_.find(json);
  if (it != by_json_.end()) {
    bytes_ -= it->first.size() + it->second.source_path.size();
    by_json_.erase(it);
  }
  if (bytes_ + size > max_bytes_) {
    by_json_.clear();
    bytes_ = 0;
  }
  by_json_.emplace(json, Entry{source_path, object});
  bytes_ += size;
  return object;
}

size_t ParsedObjectCache::size() const {
  ferry::MutexLock l(&mu_);
  return by_json_.size();
}

size_t ParsedObjectCache::bytes() const {
  ferry::MutexLock l(&mu_);
  return bytes_;
}

}  // namespace ferry::deployer::host
