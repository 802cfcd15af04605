#pragma once

#include <atomic>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/concurrency/mutex.h"
#include "services/notifier/notifier_store.h"

namespace ferry::notifier {

// One job: keeps the notifier's "declared" subscriptions equal to those the
// applications declare (ferry.yaml `notifications:`, read from the planner
// through ApplicationSource). Each becomes "<application>/<name>", filtered
// to its application, with source "declared"; the whole set is replaced at
// once (NotifierStore::ReplaceDeclaredSubscriptions), with a
// SUBSCRIPTION_CREATED (added or changed: details.change) or
// SUBSCRIPTION_DELETED audit event per change, in the same transaction. API and --subscriptions-file subscriptions are never
// touched. An application event marks the set stale (MarkStale); it is
// synced before the next event that is matched against subscriptions
// (SyncIfStale, from the ingester), within a second otherwise (the notifier's
// loop), and periodically in full. A burst of application events costs one
// sync, not one each (issue #23: each sync reads every application, and
// registering 1,000 applications cost 1,000 syncs, 1,000,000 rows read).
// Thread-safe (one sync at a time).
class DeclaredSubscriptionSync {
 public:
  DeclaredSubscriptionSync(NotifierStore& store, ApplicationSource& applications)
      : store_(store), applications_(applications) {}

  // Reads every application and replaces the set. A subscription the
  // notifier's checks refuse (ValidateDeclaredSubscription; a planner of
  // another version) is left out and logged, naming it: one bad entry must
  // not silence the others. UNAVAILABLE when the planner cannot be read
  // (nothing changes). Returns how many subscriptions changed.
  absl::StatusOr<int> Sync();
  // An application was created, changed or deleted: the set is out of date.
  void MarkStale() { stale_ = true; }
  // Sync() when marked stale since the last sync began; 0 otherwise.
  absl::StatusOr<int> SyncIfStale();

 private:
  // Set by MarkStale, cleared when a sync begins (set again when it fails).
  std::atomic<bool> stale_{false};
  absl::StatusOr<int> SyncLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  NotifierStore& store_;
  ApplicationSource& applications_;
  Mutex mu_;
};

}  // namespace ferry::notifier
