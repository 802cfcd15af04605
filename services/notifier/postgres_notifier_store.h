#pragma once

#include "common/outbox/outbox_store.h"
#include "common/postgres/connection_pool.h"
#include "services/notifier/notifier_store.h"

namespace ferry::notifier {

// NotifierStore in the schema "notifier". All of the notifier's SQL.
class PostgresNotifierStore : public NotifierStore {
 public:
  // `outbox` (may be null: no audit events) records subscription changes.
  explicit PostgresNotifierStore(postgres::ConnectionPool& pool, outbox::OutboxStore* outbox = nullptr);

  absl::StatusOr<int64_t> Cursor() override;
  absl::StatusOr<int> RecordEvents(const std::vector<EventDeliveries>& events) override;
  absl::StatusOr<std::vector<v1::Subscription>> ListSubscriptions() override;
  absl::Status CreateSubscription(const v1::Subscription& s, const std::optional<v1::Event>& audit) override;
  absl::Status DeleteSubscription(const std::string& name, const std::optional<v1::Event>& audit) override;
  absl::Status ReplaceConfigSubscriptions(const std::vector<v1::Subscription>& subs) override;
  absl::StatusOr<int> ReplaceDeclaredSubscriptions(const std::vector<v1::Subscription>& subs,
                                                   const DeclaredChangeEvent& audit) override;
  absl::Status RecordAuditEvent(const v1::Event& audit) override;
  absl::StatusOr<std::vector<DueDelivery>> ClaimDue(int limit, absl::Duration lease) override;
  absl::Status MarkDelivered(int64_t id) override;
  absl::Status MarkFailed(int64_t id, const std::string& error, std::optional<absl::Duration> retry_in) override;
  absl::StatusOr<std::vector<v1::Delivery>> ListDeliveries(v1::DeliveryState state, const std::string& subscription,
                                                          int64_t before_id, int limit) override;
  absl::StatusOr<DeliveryCounts> Counts() override;

 private:
  absl::Status Record(pqxx::work& txn, const std::optional<v1::Event>& audit);

  postgres::ConnectionPool& pool_;
  outbox::OutboxStore* outbox_;
};

}  // namespace ferry::notifier
