#include "services/notifier/event_ingester.h"

#include <map>
#include <optional>

#include "common/logging/logger.h"
#include "common/status/status_macros.h"
#include "services/notifier/notification_builder.h"
#include "services/notifier/notification_event.h"
#include "common/notifications/subscription_rules.h"

namespace ferry::notifier {

using notifications::Matches;

namespace {

bool IsApplicationEvent(const v1::Event& event) {
  return event.action() == v1::AUDIT_ACTION_APPLICATION_CREATED ||
         event.action() == v1::AUDIT_ACTION_APPLICATION_UPDATED ||
         event.action() == v1::AUDIT_ACTION_APPLICATION_DELETED;
}

}  // namespace

absl::Status EventIngester::Ingest(const v1::Event& event) { return IngestBatch({event}); }

absl::Status EventIngester::IngestBatch(const std::vector<v1::Event>& events) {
  // What this batch has made of its events so far, recorded in one
  // transaction; the subscriptions and Git hosts read once for it.
  std::vector<NotifierStore::EventDeliveries> made;
  std::optional<std::vector<v1::Subscription>> subs;
  std::map<std::string, v1::GitHost> hosts;
  // Nothing of a batch is recorded when any of it fails (the caller retries
  // the batch); the declared-subscription state goes back to stale with it.
  const bool stale_at_start = declared_stale_;
  auto failed = [&](absl::Status s) {
    declared_stale_ = declared_stale_ || stale_at_start;
    return s;
  };
  for (const v1::Event& event : events) {
    if (IsApplicationEvent(event)) declared_stale_ = true;
    NotifierStore::EventDeliveries recorded;
    recorded.sequence = event.sequence();
    const v1::NotificationEvent kind = NotificationEventOf(event);
    if (kind != v1::NOTIFICATION_EVENT_UNSPECIFIED) {
      if (declared_ != nullptr && declared_stale_) {
        // Once for a run of application events (issue #23: registering
        // 10,000 applications made 10,000 APPLICATION_CREATED events, each
        // of which read all 10,000 from the planner), before the first
        // event that is matched against subscriptions. The events before
        // it are recorded first, matched against what was declared then.
        if (!made.empty()) {
          absl::StatusOr<int> added = store_.RecordEvents(made);
          if (!added.ok()) return failed(added.status());
          Recorded(made);
          made.clear();
        }
        absl::StatusOr<int> synced = declared_->Sync();
        if (!synced.ok()) return failed(synced.status());
        declared_stale_ = false;
        subs.reset();
      }
      if (!subs.has_value()) {
        absl::StatusOr<std::vector<v1::Subscription>> listed = store_.ListSubscriptions();
        if (!listed.ok()) return failed(listed.status());
        subs = std::move(*listed);
      }
      for (const v1::Subscription& s : *subs) {
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
        recorded.deliveries.push_back(*std::move(d));
      }
    }
    if (repositories_ != nullptr && !event.subject().repository_id().empty() &&
        (event.action() == v1::AUDIT_ACTION_PLAN_CREATED || event.action() == v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED ||
         event.action() == v1::AUDIT_ACTION_DEPLOYMENT_FAILED ||
         event.action() == v1::AUDIT_ACTION_DEPLOYMENT_ROLLED_BACK)) {
      const std::string& repo = event.subject().repository_id();
      auto known = hosts.find(repo);
      if (known == hosts.end()) {
        absl::StatusOr<v1::GitHost> host = repositories_->GitHostOf(repo);
        if (absl::IsNotFound(host.status())) {
          host = v1::GitHost();  // the repository is gone: no status to set
        }
        if (!host.ok()) return failed(host.status());
        known = hosts.emplace(repo, *std::move(host)).first;
      }
      absl::StatusOr<std::optional<NewDelivery>> status = BuildCommitStatus(known->second, event);
      if (!status.ok()) {
        logging::Warn("no commit status for event", {{"sequence", event.sequence()},
                                                     {"repository", repo},
                                                     {"error", status.status().ToString()}});
      } else if (status->has_value()) {
        recorded.deliveries.push_back(**std::move(status));
      }
    }
    made.push_back(std::move(recorded));
  }
  absl::StatusOr<int> added = store_.RecordEvents(made);
  if (!added.ok()) return failed(added.status());
  Recorded(made);
  return absl::OkStatus();
}

void EventIngester::Recorded(const std::vector<NotifierStore::EventDeliveries>& events) {
  if (metrics_ == nullptr) return;
  for (const NotifierStore::EventDeliveries& e : events) metrics_->EventRecorded(e.sequence);
}

}  // namespace ferry::notifier
