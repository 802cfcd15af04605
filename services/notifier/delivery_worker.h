#pragma once

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/concurrency/backoff.h"
#include "services/notifier/delivery_sender.h"
#include "services/notifier/notifier_metrics.h"
#include "services/notifier/notifier_store.h"

namespace ferry::notifier {

struct DeliveryOptions {
  int batch = 20;  // deliveries claimed at once
  // How long a claimed delivery stays hidden from other claimers: a
  // notifier killed while sending leaves it to be sent again after this.
  absl::Duration lease = absl::Seconds(60);
  // The wait before the n-th retry: initial * 2^(n-1), capped at max.
  concurrency::BackoffPolicy retry{.initial = absl::Seconds(5), .max = absl::Minutes(10), .jitter = 0.0,
                                   .factor = 2.0};
  int max_attempts = 12;  // then FAILED
  absl::Duration poll = absl::Seconds(2);  // wait when nothing was due
};

// Sends due deliveries from the outbox: claims a batch, sends each, and
// records the outcome (delivered; retried after a backoff; failed after
// max_attempts, or at once when retrying cannot help). At least once: a
// delivery is marked delivered only after the receiver took it.
// Thread-compatible: one loop thread runs it.
class DeliveryWorker {
 public:
  DeliveryWorker(NotifierStore& store, DeliverySender& sender, DeliveryOptions options, NotifierMetrics* metrics)
      : store_(store), sender_(sender), options_(options), metrics_(metrics) {}

  // One round; returns the wait before the next (zero when a full batch was
  // claimed, so the backlog drains), or a store failure.
  absl::StatusOr<absl::Duration> RunOnce();

 private:
  NotifierStore& store_;
  DeliverySender& sender_;
  const DeliveryOptions options_;
  NotifierMetrics* metrics_;
};

}  // namespace ferry::notifier
