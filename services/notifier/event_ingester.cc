#include "services/notifier/event_ingester.h"

#include "common/logging/logger.h"
#include "common/status/status_macros.h"
#include "services/notifier/notification_builder.h"
#include "services/notifier/notification_event.h"
#include "common/notifications/subscription_rules.h"

namespace ferry::notifier {

using notifications::Matches;

absl::Status EventIngester::Ingest(const v1::Event& event) {
  if (declared_ != nullptr && (event.action() == v1::AUDIT_ACTION_APPLICATION_CREATED ||
                               event.action() == v1::AUDIT_ACTION_APPLICATION_UPDATED ||
                               event.action() == v1::AUDIT_ACTION_APPLICATION_DELETED)) {
    declared_->MarkStale();
  }
  std::vector<NewDelivery> deliveries;
  const v1::NotificationEvent kind = NotificationEventOf(event);
  if (kind != v1::NOTIFICATION_EVENT_UNSPECIFIED) {
    // Matched against what the applications declare now: an application
    // event before this one is synced first (once for a burst of them).
    if (declared_ != nullptr) RETURN_IF_ERROR(declared_->SyncIfStale().status());
    ASSIGN_OR_RETURN(std::vector<v1::Subscription> subs, store_.ListSubscriptions());
    for (const v1::Subscription& s : subs) {
      if (!Matches(s, event, kind)) continue;
      absl::StatusOr<NewDelivery> d = BuildNotification(s, event, kind);
      if (!d.ok()) {
        // Subscriptions are checked when made; one that still cannot build
        // must not hold back every other subscription's notifications.
        logging::Error("notification not built", {{"subscription", s.name()},
                                                  {"sequence", event.sequence()},
                                                  {"error", d.status().ToString()}});
        continue;
      }
      deliveries.push_back(*std::move(d));
    }
  }
  if (repositories_ != nullptr && !event.subject().repository_id().empty() &&
      (event.action() == v1::AUDIT_ACTION_PLAN_CREATED || event.action() == v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED ||
       event.action() == v1::AUDIT_ACTION_DEPLOYMENT_FAILED ||
       event.action() == v1::AUDIT_ACTION_DEPLOYMENT_ROLLED_BACK)) {
    absl::StatusOr<v1::GitHost> host = repositories_->GitHostOf(event.subject().repository_id());
    if (absl::IsNotFound(host.status())) {
      host = v1::GitHost();  // the repository is gone: no status to set
    }
    if (!host.ok()) return host.status();
    absl::StatusOr<std::optional<NewDelivery>> status = BuildCommitStatus(*host, event);
    if (!status.ok()) {
      logging::Warn("no commit status for event", {{"sequence", event.sequence()},
                                                   {"repository", event.subject().repository_id()},
                                                   {"error", status.status().ToString()}});
    } else if (status->has_value()) {
      deliveries.push_back(**std::move(status));
    }
  }
  ASSIGN_OR_RETURN(int added, store_.RecordEvent(event.sequence(), deliveries));
  (void)added;
  if (metrics_ != nullptr) metrics_->EventRecorded(event.sequence());
  return absl::OkStatus();
}

}  // namespace ferry::notifier
