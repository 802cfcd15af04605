#pragma once

#include "absl/status/status.h"
#include "ferry/v1/audit.pb.h"
#include "ferry/v1/notifier.pb.h"

namespace ferry::notifier {

// Checks a subscription as given to CreateSubscription or in the
// configuration file: INVALID_ARGUMENT naming the field (prefixed with
// `field`, e.g. "subscription" or "subscriptions[2]") and what is wrong.
absl::Status ValidateSubscription(const v1::Subscription& s, const std::string& field);

// Whether `s` wants `kind` for `event` (its application and environment
// filters, and its event kinds).
bool Matches(const v1::Subscription& s, const v1::Event& event, v1::NotificationEvent kind);

}  // namespace ferry::notifier
