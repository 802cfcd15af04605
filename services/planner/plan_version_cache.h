#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "common/concurrency/mutex.h"
#include "ferry/v1/planner.pb.h"

namespace ferry::planner {

// The plans this planner wrote last, each with the row version it wrote
// (PostgreSQL's xmin: the writing transaction), so that a quiet change of a
// plan it wrote (the deployer's acknowledgement, then its result) need not
// read the row first (issue #23: two reads per application of a commit
// touching 10,000). A version is only a guess: the store writes only while
// the row is still that version, and reads it when not. A row version is
// written by one transaction, so (id, version) names one body as long as
// only versions a transaction wrote once are kept (a store's own
// single-write transactions).
//
// Bounded: plans whose encoding exceeds max_entry_bytes are not kept; past
// max_bytes (encoded sizes together) or max_age, the oldest go first.
// Thread-safe.
class PlanVersionCache {
 public:
  struct Entry {
    v1::Plan plan;
    std::string version;
  };

  PlanVersionCache(size_t max_bytes, size_t max_entry_bytes, absl::Duration max_age, const Clock* clock);

  // The plan and version kept for `id`, if any (and not older than max_age).
  std::optional<Entry> Get(const std::string& id);
  // Whether a plan whose encoding takes `bytes` would be kept by Put.
  bool Keeps(size_t bytes) const { return bytes <= max_entry_bytes_ && bytes <= max_bytes_; }
  // Keeps `plan` as written at `version` (replacing what was kept for it).
  void Put(v1::Plan plan, std::string version);
  void Erase(const std::string& id);

  size_t size() const;
  size_t bytes() const;

 private:
  struct Slot {
    Entry entry;
    size_t bytes = 0;
    absl::Time kept;
    std::list<std::string>::iterator order;
  };
  void EraseLocked(std::map<std::string, Slot>::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TrimLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t max_bytes_;
  const size_t max_entry_bytes_;
  const absl::Duration max_age_;
  const Clock* const clock_;
  mutable Mutex mu_;
  std::map<std::string, Slot> slots_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> order_ ABSL_GUARDED_BY(mu_);  // oldest first
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ferry::planner
