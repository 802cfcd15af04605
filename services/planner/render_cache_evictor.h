#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "common/concurrency/background_loop.h"
#include "services/planner/planner_store.h"

namespace ferry::planner {

// One job: keeping the render cache bounded (issue #23: it was never
// evicted). Every `interval` on a background loop (the first pass a minute
// after Start(), off the start-up path) it deletes the cached renders not
// used for `max_age` and, when `max_entries` > 0, the least recently used
// beyond that many (RenderStore::EvictCachedRenders). A failed pass is
// logged and retried after the interval. Thread-safe; Stop() is idempotent.
class RenderCacheEvictor {
 public:
  struct Options {
    absl::Duration max_age = absl::Hours(24 * 7);
    int64_t max_entries = 0;  // 0: no count limit
    absl::Duration interval = absl::Hours(1);
  };
  // `clock` must outlive the evictor.
  RenderCacheEvictor(RenderStore* renders, const WaitableClock* clock, Options options);
  void Start() { loop_.Start(); }
  void Stop() { loop_.Stop(); }

  // One pass; returns how many entries went.
  absl::StatusOr<int64_t> EvictOnce();

 private:
  absl::StatusOr<absl::Duration> Step();

  RenderStore* const renders_;
  const Options options_;
  concurrency::BackgroundLoop loop_;
};

}  // namespace ferry::planner
