#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "absl/base/thread_annotations.h"
#include "common/concurrency/mutex.h"

namespace ferry::planner {

// The planner's Prometheus metrics. Thread-safe.
//   ferry_plans_total{result}                   created | failed | up_to_date | preview
//   ferry_render_duration_seconds{method}       cache misses only
//   ferry_render_cache_hits_total
//   ferry_plans_awaiting_approval{application,environment}
//                                               plans PENDING (waiting for ApprovePlan or RejectPlan)
//   ferry_plan_approval_wait_seconds{application,environment}
//                                               how long the oldest of them has waited
// The last two are set by ApprovalWaitMonitor; an application and
// environment with nothing waiting has no series.
class PlannerMetrics {
 public:
  // Plans waiting for approval in one application and environment.
  struct Waiting {
    int plans = 0;
    double oldest_seconds = 0;
  };

  explicit PlannerMetrics(prometheus::Registry* registry)
      : plans_(prometheus::BuildCounter()
                   .Name("ferry_plans_total")
                   .Help("Plans by result: created, failed, up_to_date (nothing differed), preview")
                   .Register(*registry)),
        render_(prometheus::BuildHistogram()
                    .Name("ferry_render_duration_seconds")
                    .Help("Time to render an application, by render method (cache misses only)")
                    .Register(*registry)),
        cache_hits_(prometheus::BuildCounter()
                        .Name("ferry_render_cache_hits_total")
                        .Help("Renders skipped because the render cache held the inputs' result")
                        .Register(*registry)
                        .Add({})),
        awaiting_(prometheus::BuildGauge()
                      .Name("ferry_plans_awaiting_approval")
                      .Help("Plans waiting for approval (PENDING), by application and environment")
                      .Register(*registry)),
        wait_(prometheus::BuildGauge()
                  .Name("ferry_plan_approval_wait_seconds")
                  .Help("How long the oldest plan waiting for approval has waited, by application and environment")
                  .Register(*registry)) {}

  void Plan(const std::string& result) { plans_.Add({{"result", result}}).Increment(); }
  void Render(const std::string& method, double seconds) {
    render_.Add({{"method", method}}, prometheus::Histogram::BucketBoundaries{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                                              2.5, 5, 10, 30, 90})
        .Observe(seconds);
  }
  void CacheHit() { cache_hits_.Increment(); }
  // Replaces the plans waiting for approval, by (application, environment);
  // the series of a pair no longer waiting are removed.
  void AwaitingApproval(const std::map<std::pair<std::string, std::string>, Waiting>& waiting) {
    ferry::MutexLock l(&mu_);
    for (const auto& [key, w] : waiting) {
      prometheus::Labels labels{{"application", key.first}, {"environment", key.second}};
      awaiting_.Add(labels).Set(w.plans);
      wait_.Add(labels).Set(w.oldest_seconds);
    }
    for (const auto& key : waiting_keys_) {
      if (waiting.count(key) != 0) continue;
      prometheus::Labels labels{{"application", key.first}, {"environment", key.second}};
      awaiting_.Remove(&awaiting_.Add(labels));
      wait_.Remove(&wait_.Add(labels));
    }
    waiting_keys_.clear();
    for (const auto& entry : waiting) waiting_keys_.insert(entry.first);
  }

 private:
  prometheus::Family<prometheus::Counter>& plans_;
  prometheus::Family<prometheus::Histogram>& render_;
  prometheus::Counter& cache_hits_;
  prometheus::Family<prometheus::Gauge>& awaiting_;
  prometheus::Family<prometheus::Gauge>& wait_;
  ferry::Mutex mu_;
  std::set<std::pair<std::string, std::string>> waiting_keys_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::planner
