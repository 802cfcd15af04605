#include "services/audit/dora_gauges.h"

#include <google/protobuf/util/time_util.h>

#include <set>

namespace ferry::audit {
namespace {

// The names are spelled at each .Name() call: tests/packaging/dashboard_metrics_test.py
// finds the registered metrics that way.
prometheus::detail::Builder<prometheus::Gauge> Gauge() { return prometheus::BuildGauge(); }

}  // namespace

DoraGauges::DoraGauges(TimeTravel& history, const Clock& clock, prometheus::Registry& registry, absl::Duration window)
    : history_(history),
      clock_(clock),
      window_(window),
      deployments_(Gauge()
                       .Name("ferry_dora_deployments")
                       .Help("Change deployments (ROLLOUT, ROLLBACK) that finished in the DORA window")
                       .Register(registry)),
      per_day_(Gauge()
                   .Name("ferry_dora_deployments_per_day")
                   .Help("DORA deployment frequency: successful change deployments per day over the window")
                   .Register(registry)),
      failure_rate_(Gauge()
                        .Name("ferry_dora_change_failure_rate")
                        .Help("DORA change failure rate: failed or rolled-back change deployments / all, over the "
                              "window")
                        .Register(registry)),
      lead_time_(Gauge()
                     .Name("ferry_dora_lead_time_seconds")
                     .Help("DORA lead time for changes: median commit time to healthy, over the window")
                     .Register(registry)),
      restore_(Gauge()
                   .Name("ferry_dora_time_to_restore_seconds")
                   .Help("DORA time to restore: median failure to the next healthy deployment, over the window")
                   .Register(registry)),
      unrestored_(Gauge()
                      .Name("ferry_dora_unrestored_failures")
                      .Help("Failed deployments in the window with no healthy deployment after them yet")
                      .Register(registry)) {
  Gauge()
      .Name("ferry_dora_window_seconds")
      .Help("The window the ferry_dora_* gauges cover")
      .Register(registry)
      .Add({})
      .Set(absl::ToDoubleSeconds(window_));
}

DoraGauges::Series DoraGauges::Add(const Target& t) {
  const std::map<std::string, std::string> labels = {{"application", t.first}, {"environment", t.second}};
  return Series{&deployments_.Add(labels), &per_day_.Add(labels),   &failure_rate_.Add(labels),
                &lead_time_.Add(labels),   &restore_.Add(labels),   &unrestored_.Add(labels)};
}

void DoraGauges::Remove(const Series& s) {
  deployments_.Remove(s.deployments);
  per_day_.Remove(s.per_day);
  failure_rate_.Remove(s.failure_rate);
  lead_time_.Remove(s.lead_time);
  restore_.Remove(s.restore);
  unrestored_.Remove(s.unrestored);
}

absl::Status DoraGauges::Refresh() {
  const absl::Time now = clock_.Now();
  v1::GetDoraMetricsRequest req;
  *req.mutable_start_time() =
      google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(now - window_));
  *req.mutable_end_time() = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(now));
  absl::StatusOr<v1::GetDoraMetricsResponse> metrics = history_.GetDoraMetrics(req);
  if (!metrics.ok()) return metrics.status();
  MutexLock lock(&mu_);
  std::set<Target> seen;
  for (const v1::DoraFigures& f : metrics->targets()) {
    const Target t{f.application_id(), f.environment_id()};
    seen.insert(t);
    auto it = series_.find(t);
    if (it == series_.end()) it = series_.emplace(t, Add(t)).first;
    const Series& s = it->second;
    s.deployments->Set(static_cast<double>(f.deployments()));
    s.per_day->Set(f.deployments_per_day());
    s.failure_rate->Set(f.change_failure_rate());
    s.lead_time->Set(f.lead_time_median_seconds());
    s.restore->Set(f.time_to_restore_median_seconds());
    s.unrestored->Set(static_cast<double>(f.unrestored_failures()));
  }
  for (auto it = series_.begin(); it != series_.end();) {
    if (seen.count(it->first) > 0) {
      ++it;
      continue;
    }
    Remove(it->second);
    it = series_.erase(it);
  }
  return absl::OkStatus();
}

}  // namespace ferry::audit
