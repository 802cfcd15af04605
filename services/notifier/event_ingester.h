#pragma once

#include <vector>

#include "absl/status/status.h"
#include "ferry/v1/audit.pb.h"
#include "services/notifier/declared_subscription_sync.h"
#include "services/notifier/notifier_metrics.h"
#include "services/notifier/notifier_store.h"

namespace ferry::notifier {

// Turns one audit event into its deliveries: one per subscription that
// wants it, and the commit status its repository's Git host should show,
// recorded with the cursor in one transaction (NotifierStore::RecordEvents),
// so that an event is recorded exactly once across restarts.
// Thread-compatible (the audit follower calls it from its one thread).
class EventIngester {
 public:
  // `repositories` may be null: no commit statuses. `declared` may be null:
  // no subscriptions from applications' ferry.yaml.
  EventIngester(NotifierStore& store, RepositorySource* repositories, NotifierMetrics* metrics,
                DeclaredSubscriptionSync* declared = nullptr)
      : store_(store), repositories_(repositories), metrics_(metrics), declared_(declared) {}

  // An application created, changed or deleted makes the declared
  // subscriptions stale: they are brought up to date (once for a run of
  // such events, and once after start) before the next event that is
  // matched against subscriptions, so that the events after it (its
  // deployments) are matched against what its ferry.yaml now says. A
  // failure (the database, the repo-watcher or the planner unreachable)
  // records nothing: the caller retries the same event later.
  absl::Status Ingest(const v1::Event& event);
  // The same for events Tail delivered together, ascending: recorded in one
  // transaction with the cursor at the last (or, when an application event
  // among them makes the declared subscriptions stale, in one transaction
  // up to it and one after the sync). Subscriptions and Git hosts are read
  // once per batch. A failure records nothing of what remains: the caller
  // retries from the stored cursor.
  absl::Status IngestBatch(const std::vector<v1::Event>& events);

 private:
  void Recorded(const std::vector<NotifierStore::EventDeliveries>& events);

  NotifierStore& store_;
  RepositorySource* repositories_;
  NotifierMetrics* metrics_;
  DeclaredSubscriptionSync* declared_;
  // Application events seen since the last sync (true at start: events
  // before this process's first sync may have gone unsynced).
  bool declared_stale_ = true;
};

}  // namespace ferry::notifier
