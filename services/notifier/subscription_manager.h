#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ferry/v1/notifier.pb.h"
#include "services/notifier/notifier_store.h"

namespace ferry::notifier {

// The Notifier API's logic: subscriptions made by API (checked by
// ValidateSubscription) and the delivery log. Thread-safe (the store is).
class SubscriptionManager {
 public:
  explicit SubscriptionManager(NotifierStore& store) : store_(store) {}

  // Each change is recorded in the audit trail (SUBSCRIPTION_CREATED,
  // SUBSCRIPTION_DELETED) as done by `actor`, in the same transaction.
  absl::StatusOr<v1::Subscription> Create(v1::Subscription s, const v1::Actor& actor);
  absl::Status Delete(const std::string& name, const v1::Actor& actor);
  absl::StatusOr<v1::ListSubscriptionsResponse> List();
  absl::StatusOr<v1::ListDeliveriesResponse> ListDeliveries(const v1::ListDeliveriesRequest& request);

 private:
  NotifierStore& store_;
};

}  // namespace ferry::notifier
