#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ferry/v1/audit.pb.h"
#include "ferry/v1/notifier.pb.h"
#include "ferry/v1/planner.pb.h"
#include "ferry/v1/repo_watcher.pb.h"
#include "services/notifier/delivery_request.h"

namespace ferry::notifier {

struct DeliveryCounts {
  int64_t pending = 0;
  int64_t failed = 0;
};

// The notifier's storage: the audit cursor, the subscriptions and the
// delivery outbox. Implementations are thread-safe.
class NotifierStore {
 public:
  virtual ~NotifierStore() = default;

  // The sequence of the last audit event recorded (0: none yet).
  virtual absl::StatusOr<int64_t> Cursor() = 0;
  // In one transaction, for events ascending by sequence: each one past the
  // cursor adds its deliveries (one per (sequence, subscription); an
  // existing one is kept), and the cursor moves once, to the last of them;
  // events at or before the cursor are skipped. Returns how many deliveries
  // were added. So an event is recorded once, however often Tail replays it,
  // and a batch of events Tail delivered together costs one transaction
  // (issue #23), recorded whole or not at all.
  struct EventDeliveries {
    int64_t sequence = 0;
    std::vector<NewDelivery> deliveries;
  };
  virtual absl::StatusOr<int> RecordEvents(const std::vector<EventDeliveries>& events) = 0;

  // Every subscription, by name.
  virtual absl::StatusOr<std::vector<v1::Subscription>> ListSubscriptions() = 0;
  // ALREADY_EXISTS when the name is taken. `s.source` says where it came from.
  // `audit` (when set) is recorded in the same transaction.
  virtual absl::Status CreateSubscription(const v1::Subscription& s, const std::optional<v1::Event>& audit) = 0;
  // NOT_FOUND when there is none; FAILED_PRECONDITION for a "config" one.
  // Its pending deliveries go with it; `audit` is recorded with it.
  virtual absl::Status DeleteSubscription(const std::string& name, const std::optional<v1::Event>& audit) = 0;
  // Makes the "config" subscriptions exactly `subs` (added, replaced,
  // removed), in one transaction. FAILED_PRECONDITION naming it when one's
  // name is held by an API subscription.
  virtual absl::Status ReplaceConfigSubscriptions(const std::vector<v1::Subscription>& subs) = 0;
  // Makes the "declared" subscriptions (those of applications' ferry.yaml,
  // named "<application>/<name>") exactly `subs`, in one transaction:
  // added, changed, removed (with their pending deliveries), the audit
  // event `audit` makes for each change (before or after null for an added
  // or removed one) recorded with it. API and configuration file
  // subscriptions are never touched (their names hold no "/"). Returns how
  // many changed.
  using DeclaredChangeEvent =
      std::function<v1::Event(const v1::Subscription* before, const v1::Subscription* after)>;
  virtual absl::StatusOr<int> ReplaceDeclaredSubscriptions(const std::vector<v1::Subscription>& subs,
                                                           const DeclaredChangeEvent& audit) = 0;

  // Records an audit event on its own (a test send).
  virtual absl::Status RecordAuditEvent(const v1::Event& audit) = 0;

  // Up to `limit` pending deliveries that are due, oldest first, each
  // counted as an attempt and hidden from other claimers for `lease` (a
  // notifier that dies while sending leaves it to be claimed again then).
  virtual absl::StatusOr<std::vector<DueDelivery>> ClaimDue(int limit, absl::Duration lease) = 0;
  virtual absl::Status MarkDelivered(int64_t id) = 0;
  // Records a failed attempt: retried after `retry_in`, or, when nullopt,
  // given up (FAILED).
  virtual absl::Status MarkFailed(int64_t id, const std::string& error, std::optional<absl::Duration> retry_in) = 0;
  // Deliveries newest first with id < before_id (0: from the newest).
  virtual absl::StatusOr<std::vector<v1::Delivery>> ListDeliveries(v1::DeliveryState state,
                                                                  const std::string& subscription, int64_t before_id,
                                                                  int limit) = 0;
  virtual absl::StatusOr<DeliveryCounts> Counts() = 0;
};

// The applications and the subscriptions they declare (the planner's
// ListApplications).
class ApplicationSource {
 public:
  virtual ~ApplicationSource() = default;
  // Every application. UNAVAILABLE: retry.
  virtual absl::StatusOr<std::vector<v1::Application>> ListApplications() = 0;
};

// Where a repository's Git host is (the repo-watcher's GetRepository).
class RepositorySource {
 public:
  virtual ~RepositorySource() = default;
  // The repository's git_host (kind UNSPECIFIED when it has none). NOT_FOUND
  // when the repository is gone; UNAVAILABLE: retry.
  virtual absl::StatusOr<v1::GitHost> GitHostOf(const std::string& repository_id) = 0;
};

}  // namespace ferry::notifier
