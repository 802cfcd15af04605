#pragma once

#include <string>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

namespace ferry::notifier {

// The notifier's metrics (docs/observability.md):
//   ferry_notifier_events_total             audit events recorded
//   ferry_notifier_deliveries_total{sink,outcome}  attempts: delivered, retry, failed
//   ferry_notifier_deliveries_pending       pending deliveries (the outbox backlog)
//   ferry_notifier_deliveries_failed        deliveries given up on
//   ferry_notifier_audit_cursor             the last audit sequence recorded
// Thread-safe.
class NotifierMetrics {
 public:
  explicit NotifierMetrics(prometheus::Registry& registry);
  void EventRecorded(int64_t sequence);
  // outcome: "delivered", "retry" or "failed"; sink: webhook, slack, teams, email, commit_status.
  void Attempt(const std::string& sink, const std::string& outcome);
  void SetBacklog(int64_t pending, int64_t failed);

 private:
  prometheus::Counter& events_;
  prometheus::Family<prometheus::Counter>& attempts_;
  prometheus::Gauge& pending_;
  prometheus::Gauge& failed_;
  prometheus::Gauge& cursor_;
};

}  // namespace ferry::notifier
