#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/concurrency/mutex.h"
#include "services/deployer/host/host_objects.h"

namespace ferry::deployer::host {

// Host objects parsed from their applied JSON, kept for the next look at the
// same object: a drift check parses every application's applied manifest
// again each interval, and that was 12% of the deployer's idle CPU at 10,000
// applications (issue #23). An entry is found only by the same JSON and
// source path, so what is served is what ParseHostObject gives for them.
// Bounded by the bytes of JSON kept: an entry that would pass the bound
// empties the cache first. Errors are not kept. Thread-safe.
class ParsedObjectCache {
 public:
  static constexpr size_t kDefaultMaxBytes = 8 << 20;

  explicit ParsedObjectCache(size_t max_bytes = kDefaultMaxBytes) : max_bytes_(max_bytes) {}

  absl::StatusOr<std::shared_ptr<const HostObject>> Parse(const std::string& json, const std::string& source_path);

  size_t size() const;
  size_t bytes() const;

 private:
  struct Entry {
    std::string source_path;
    std::shared_ptr<const HostObject> object;
  };

  const size_t max_bytes_;
  mutable ferry::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> by_json_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ferry::deployer::host
