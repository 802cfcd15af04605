#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "ferry/v1/audit.pb.h"
#include "ferry/v1/notifier.pb.h"
#include "ferry/v1/repo_watcher.pb.h"
#include "services/notifier/delivery_request.h"

namespace ferry::notifier {

// The delivery of `event` (which is notification `kind`) to subscription
// `s`: the message rendered from its template, in the sink's format
// (docs/notifier.md): the generic webhook's JSON document, a Slack
// {"text"} or Teams MessageCard body, or an RFC 5322 e-mail. Deterministic:
// the same event and subscription give the same bytes (the e-mail's Date is
// the event's time), so a retry sends what the first attempt sent.
// `delivery_id` replaces "<sequence>/<subscription>" (a test send).
absl::StatusOr<NewDelivery> BuildNotification(const v1::Subscription& s, const v1::Event& event,
                                              v1::NotificationEvent kind, const std::string& delivery_id = "");

// The commit status `event` calls for on the repository's Git host, or
// nullopt when it calls for none: PLAN_CREATED -> pending,
// DEPLOYMENT_SUCCEEDED -> success, DEPLOYMENT_FAILED and
// DEPLOYMENT_ROLLED_BACK -> failure, with the context "ferry/<environment>".
// `host` is the repository's git_host (kind UNSPECIFIED: none).
// INVALID_ARGUMENT when the host or the event cannot make one (no sha).
absl::StatusOr<std::optional<NewDelivery>> BuildCommitStatus(const v1::GitHost& host, const v1::Event& event);

}  // namespace ferry::notifier
