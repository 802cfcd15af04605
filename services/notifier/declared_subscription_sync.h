#pragma once

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
// touched. Called by the ingester after application events, before the next
// event it matches (so the events after them are matched against the new
// set), and periodically. Thread-safe
// (one sync at a time).
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

 private:
  NotifierStore& store_;
  ApplicationSource& applications_;
  Mutex mu_;
};

}  // namespace ferry::notifier
