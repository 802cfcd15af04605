#pragma once

#include <string>
#include <vector>

#include "ferry/v1/audit.pb.h"
#include "ferry/v1/notifier.pb.h"

namespace ferry::notifier {

// Which notification an audit event is, or NOTIFICATION_EVENT_UNSPECIFIED
// for one that notifies nobody. PLAN_CREATED is "waiting for approval" only
// when its details say the plan was created in PLAN_STATE_PENDING.
v1::NotificationEvent NotificationEventOf(const v1::Event& event);

// The audit actions the notifier follows (its Tail filter): those above,
// PLAN_CREATED (for commit statuses too), and APPLICATION_CREATED, _UPDATED
// and _DELETED (which bring declared subscriptions up to date).
std::vector<v1::AuditAction> FollowedActions();

// "deployment_failed" for NOTIFICATION_EVENT_DEPLOYMENT_FAILED.
std::string EventName(v1::NotificationEvent event);

}  // namespace ferry::notifier
