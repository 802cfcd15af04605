#include "services/notifier/delivery_worker.h"

#include "common/logging/logger.h"
#include "common/status/status_macros.h"

namespace ferry::notifier {

absl::StatusOr<absl::Duration> DeliveryWorker::RunOnce() {
  ASSIGN_OR_RETURN(std::vector<DueDelivery> due, store_.ClaimDue(options_.batch, options_.lease));
  for (const DueDelivery& d : due) {
    const std::string sink = DeliverySender::KindOf(d.request);
    absl::Status sent = sender_.Send(d.request);
    if (sent.ok()) {
      RETURN_IF_ERROR(store_.MarkDelivered(d.id));
      if (metrics_ != nullptr) metrics_->Attempt(sink, "delivered");
      continue;
    }
    const bool give_up = !absl::IsUnavailable(sent) || d.attempts >= options_.max_attempts;
    std::optional<absl::Duration> retry_in;
    if (!give_up) retry_in = concurrency::BackoffDelay(options_.retry, d.attempts);
    RETURN_IF_ERROR(store_.MarkFailed(d.id, std::string(sent.message()), retry_in));
    if (metrics_ != nullptr) metrics_->Attempt(sink, give_up ? "failed" : "retry");
    logging::Warn(give_up ? "delivery failed, giving up" : "delivery failed, will retry",
                  {{"delivery", d.id},
                   {"subscription", d.subscription},
                   {"sequence", d.event_sequence},
                   {"attempt", d.attempts},
                   {"error", std::string(sent.message())},
                   {"retry_in_seconds", retry_in.has_value() ? absl::ToDoubleSeconds(*retry_in) : -1.0}});
  }
  if (metrics_ != nullptr) {
    if (absl::StatusOr<DeliveryCounts> c = store_.Counts(); c.ok()) metrics_->SetBacklog(c->pending, c->failed);
  }
  return static_cast<int>(due.size()) >= options_.batch ? absl::ZeroDuration() : options_.poll;
}

}  // namespace ferry::notifier
