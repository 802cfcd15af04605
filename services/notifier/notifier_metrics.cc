#include "services/notifier/notifier_metrics.h"

namespace ferry::notifier {

NotifierMetrics::NotifierMetrics(prometheus::Registry& registry)
    : events_(prometheus::BuildCounter()
                  .Name("ferry_notifier_events_total")
                  .Help("Audit events the notifier recorded (matched against subscriptions)")
                  .Register(registry)
                  .Add({})),
      attempts_(prometheus::BuildCounter()
                    .Name("ferry_notifier_deliveries_total")
                    .Help("Delivery attempts by sink and outcome (delivered, retry, failed)")
                    .Register(registry)),
      pending_(prometheus::BuildGauge()
                   .Name("ferry_notifier_deliveries_pending")
                   .Help("Deliveries not yet made (the notification outbox backlog)")
                   .Register(registry)
                   .Add({})),
      failed_(prometheus::BuildGauge()
                  .Name("ferry_notifier_deliveries_failed")
                  .Help("Deliveries given up on after the last attempt")
                  .Register(registry)
                  .Add({})),
      cursor_(prometheus::BuildGauge()
                  .Name("ferry_notifier_audit_cursor")
                  .Help("Sequence of the last audit event the notifier recorded")
                  .Register(registry)
                  .Add({})) {}

void NotifierMetrics::EventRecorded(int64_t sequence) {
  events_.Increment();
  cursor_.Set(static_cast<double>(sequence));
}

void NotifierMetrics::Attempt(const std::string& sink, const std::string& outcome) {
  attempts_.Add({{"sink", sink}, {"outcome", outcome}}).Increment();
}

void NotifierMetrics::SetBacklog(int64_t pending, int64_t failed) {
  pending_.Set(static_cast<double>(pending));
  failed_.Set(static_cast<double>(failed));
}

}  // namespace ferry::notifier
