#pragma once

#include "absl/status/status.h"
#include "ferry/v1/audit.pb.h"
#include "ferry/v1/notifier.pb.h"

namespace ferry::notifications {

// Checks a subscription as given to CreateSubscription or in the
// configuration file: INVALID_ARGUMENT naming the field (prefixed with
// `field`, e.g. "subscription" or "subscriptions[2]") and what is wrong.
absl::Status ValidateSubscription(const v1::Subscription& s, const std::string& field);

// Checks a subscription an application declares (ferry.yaml
// `applications.<id>.notifications`, or the application's API spec), on top
// of ValidateSubscription: whoever can push to the repository writes it, so
// it may hear only about its own application (`application_id` must equal
// `application_id` given; events of a deployment, plan or drift, never the
// suite-wide refusals: signature_rejected, webhook_rejected, access_denied),
// and it holds no secret inline: a Slack or Teams URL (the URL is the
// credential) only as url_secret, a webhook url without user info, query
// or fragment.
absl::Status ValidateDeclaredSubscription(const v1::Subscription& s, const std::string& application_id,
                                          const std::string& field);

// Whether `s` wants `kind` for `event` (its application and environment
// filters, and its event kinds).
bool Matches(const v1::Subscription& s, const v1::Event& event, v1::NotificationEvent kind);

}  // namespace ferry::notifications
