#include "services/planner/render_cache_evictor.h"

#include <string>

#include "common/logging/logger.h"

namespace ferry::planner {

namespace {

concurrency::LoopOptions EvictorLoop() {
  concurrency::LoopOptions o;
  o.first_run_after = absl::Minutes(1);  // off the start-up path
  return o;
}

}  // namespace

RenderCacheEvictor::RenderCacheEvictor(RenderStore* renders, const WaitableClock* clock, Options options)
    : renders_(renders), options_(options), loop_("render-cache-evictor", [this] { return Step(); }, EvictorLoop(), clock) {}

absl::StatusOr<int64_t> RenderCacheEvictor::EvictOnce() {
  return renders_->EvictCachedRenders(options_.max_age, options_.max_entries);
}

absl::StatusOr<absl::Duration> RenderCacheEvictor::Step() {
  absl::StatusOr<int64_t> gone = EvictOnce();
  if (!gone.ok()) {
    logging::Warn("evicting the render cache failed", {{"error", gone.status().ToString()}});
  } else if (*gone > 0) {
    logging::Info("render cache evicted", {{"entries", std::to_string(*gone)}});
  }
  return options_.interval;
}

}  // namespace ferry::planner
