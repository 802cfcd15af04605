#pragma once

#include "absl/status/status.h"
#include "ferry/v1/audit.pb.h"
#include "services/notifier/declared_subscription_sync.h"
#include "services/notifier/notifier_metrics.h"
#include "services/notifier/notifier_store.h"

namespace ferry::notifier {

// Turns one audit event into its deliveries: one per subscription that
// wants it, and the commit status its repository's Git host should show,
// recorded with the cursor in one transaction (NotifierStore::RecordEvent),
// so that an event is recorded exactly once across restarts.
// Thread-compatible (the audit follower calls it from its one thread).
class EventIngester {
 public:
  // `repositories` may be null: no commit statuses. `declared` may be null:
  // no subscriptions from applications' ferry.yaml.
  EventIngester(NotifierStore& store, RepositorySource* repositories, NotifierMetrics* metrics,
                DeclaredSubscriptionSync* declared = nullptr)
      : store_(store), repositories_(repositories), metrics_(metrics), declared_(declared) {}

  // An application created, changed or deleted marks the declared
  // subscriptions stale; the next event matched against subscriptions brings
  // them up to date first, so that the events after it (its deployments)
  // are matched against what its ferry.yaml now says. A failure (the
  // database, the repo-watcher or the planner unreachable) records nothing:
  // the caller retries the same event later.
  absl::Status Ingest(const v1::Event& event);

 private:
  NotifierStore& store_;
  RepositorySource* repositories_;
  NotifierMetrics* metrics_;
  DeclaredSubscriptionSync* declared_;
};

}  // namespace ferry::notifier
