#include "services/notifier/notification_event.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace ferry::notifier {

v1::NotificationEvent NotificationEventOf(const v1::Event& event) {
  switch (event.action()) {
    case v1::AUDIT_ACTION_DEPLOYMENT_STARTED:
      return v1::NOTIFICATION_EVENT_DEPLOYMENT_STARTED;
    case v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED:
      return v1::NOTIFICATION_EVENT_DEPLOYMENT_SUCCEEDED;
    case v1::AUDIT_ACTION_DEPLOYMENT_FAILED:
      return v1::NOTIFICATION_EVENT_DEPLOYMENT_FAILED;
    case v1::AUDIT_ACTION_DEPLOYMENT_ROLLED_BACK:
      return v1::NOTIFICATION_EVENT_DEPLOYMENT_ROLLED_BACK;
    case v1::AUDIT_ACTION_PLAN_CREATED: {
      auto it = event.details().fields().find("state");
      if (it != event.details().fields().end() && it->second.string_value() == "PLAN_STATE_PENDING") {
        return v1::NOTIFICATION_EVENT_PLAN_WAITING_FOR_APPROVAL;
      }
      return v1::NOTIFICATION_EVENT_UNSPECIFIED;
    }
    case v1::AUDIT_ACTION_DRIFT_DETECTED:
      return v1::NOTIFICATION_EVENT_DRIFT_DETECTED;
    case v1::AUDIT_ACTION_DRIFT_HEALED:
      return v1::NOTIFICATION_EVENT_DRIFT_HEALED;
    case v1::AUDIT_ACTION_SIGNATURE_REJECTED:
      return v1::NOTIFICATION_EVENT_SIGNATURE_REJECTED;
    case v1::AUDIT_ACTION_WEBHOOK_REJECTED:
      return v1::NOTIFICATION_EVENT_WEBHOOK_REJECTED;
    case v1::AUDIT_ACTION_ACCESS_DENIED:
      return v1::NOTIFICATION_EVENT_ACCESS_DENIED;
    default:
      return v1::NOTIFICATION_EVENT_UNSPECIFIED;
  }
}

std::vector<v1::AuditAction> FollowedActions() {
  return {v1::AUDIT_ACTION_DEPLOYMENT_STARTED,   v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED,
          v1::AUDIT_ACTION_DEPLOYMENT_FAILED,    v1::AUDIT_ACTION_DEPLOYMENT_ROLLED_BACK,
          v1::AUDIT_ACTION_PLAN_CREATED,         v1::AUDIT_ACTION_DRIFT_DETECTED,
          v1::AUDIT_ACTION_DRIFT_HEALED,         v1::AUDIT_ACTION_SIGNATURE_REJECTED,
          v1::AUDIT_ACTION_WEBHOOK_REJECTED,     v1::AUDIT_ACTION_ACCESS_DENIED,
          // Not notified: they bring applications' declared subscriptions up to date.
          v1::AUDIT_ACTION_APPLICATION_CREATED,  v1::AUDIT_ACTION_APPLICATION_UPDATED,
          v1::AUDIT_ACTION_APPLICATION_DELETED};
}

std::string EventName(v1::NotificationEvent event) {
  std::string name = v1::NotificationEvent_Name(event);
  constexpr absl::string_view kPrefix = "NOTIFICATION_EVENT_";
  if (absl::StartsWith(name, kPrefix)) name = name.substr(kPrefix.size());
  return absl::AsciiStrToLower(name);
}

}  // namespace ferry::notifier
