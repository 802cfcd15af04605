#pragma once

#include <map>
#include <string>
#include <utility>

#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "common/concurrency/mutex.h"
#include "services/audit/time_travel.h"

namespace ferry::audit {

// The DORA figures of the last `window` as Prometheus gauges, per
// application and environment, recomputed by Refresh() (the service runs it
// on a BackgroundLoop). A pair with no outcome in the window loses its
// series. Thread-safe.
//   ferry_dora_deployments{application,environment}            change deployments finished in the window
//   ferry_dora_deployments_per_day{application,environment}    deployment frequency
//   ferry_dora_change_failure_rate{application,environment}    failed / all change deployments
//   ferry_dora_lead_time_seconds{application,environment}      median commit-to-healthy
//   ferry_dora_time_to_restore_seconds{application,environment} median failure-to-healthy
//   ferry_dora_unrestored_failures{application,environment}    failures with no healthy deployment since
//   ferry_dora_window_seconds                                  the window
class DoraGauges {
 public:
  DoraGauges(TimeTravel& history, const Clock& clock, prometheus::Registry& registry, absl::Duration window);

  absl::Status Refresh();

 private:
  using Target = std::pair<std::string, std::string>;
  struct Series {
    prometheus::Gauge* deployments = nullptr;
    prometheus::Gauge* per_day = nullptr;
    prometheus::Gauge* failure_rate = nullptr;
    prometheus::Gauge* lead_time = nullptr;
    prometheus::Gauge* restore = nullptr;
    prometheus::Gauge* unrestored = nullptr;
  };

  Series Add(const Target& target) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Remove(const Series& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  TimeTravel& history_;
  const Clock& clock_;
  const absl::Duration window_;
  prometheus::Family<prometheus::Gauge>& deployments_;
  prometheus::Family<prometheus::Gauge>& per_day_;
  prometheus::Family<prometheus::Gauge>& failure_rate_;
  prometheus::Family<prometheus::Gauge>& lead_time_;
  prometheus::Family<prometheus::Gauge>& restore_;
  prometheus::Family<prometheus::Gauge>& unrestored_;
  Mutex mu_;
  std::map<Target, Series> series_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::audit
