#pragma once

#include <memory>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace ferry::planner {

// The planner's Prometheus metrics. Thread-safe.
class PlannerMetrics {
 public:
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
                        .Add({})) {}

  void Plan(const std::string& result) { plans_.Add({{"result", result}}).Increment(); }
  void Render(const std::string& method, double seconds) {
    render_.Add({{"method", method}}, prometheus::Histogram::BucketBoundaries{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                                              2.5, 5, 10, 30, 90})
        .Observe(seconds);
  }
  void CacheHit() { cache_hits_.Increment(); }

 private:
  prometheus::Family<prometheus::Counter>& plans_;
  prometheus::Family<prometheus::Histogram>& render_;
  prometheus::Counter& cache_hits_;
};

}  // namespace ferry::planner
