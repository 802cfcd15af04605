#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ferry/v1/notifier.pb.h"
#include "common/clock/clock.h"
#include "services/notifier/delivery_sender.h"
#include "services/notifier/notifier_store.h"

namespace ferry::notifier {

// The Notifier API's logic: subscriptions made by API (checked by
// ValidateSubscription) and the delivery log. Thread-safe (the store is).
class SubscriptionManager {
 public:
  // `sender` and `clock` may be null: TestSubscription is then refused.
  explicit SubscriptionManager(NotifierStore& store, DeliverySender* sender = nullptr, const Clock* clock = nullptr)
      : store_(store), sender_(sender), clock_(clock) {}

  // Each change is recorded in the audit trail (SUBSCRIPTION_CREATED,
  // SUBSCRIPTION_DELETED) as done by `actor`, in the same transaction.
  absl::StatusOr<v1::Subscription> Create(v1::Subscription s, const v1::Actor& actor);
  absl::Status Delete(const std::string& name, const v1::Actor& actor);
  absl::StatusOr<v1::ListSubscriptionsResponse> List();
  absl::StatusOr<v1::ListDeliveriesResponse> ListDeliveries(const v1::ListDeliveriesRequest& request);
  // Sends subscription `name` a made-up event of kind `event` (its first
  // when unset) now, once, through the sender; audited with the outcome
  // (SUBSCRIPTION_TESTED). The sender's error when the receiver did not
  // take it.
  absl::StatusOr<v1::TestSubscriptionResponse> Test(const std::string& name, v1::NotificationEvent event,
                                                    const v1::Actor& actor);

 private:
  NotifierStore& store_;
  DeliverySender* sender_;
  const Clock* clock_;
};

}  // namespace ferry::notifier
