#pragma once

#include "common/postgres/connection_pool.h"
#include "services/notifier/notifier_store.h"

namespace ferry::notifier {

// NotifierStore in the schema "notifier". All of the notifier's SQL.
class PostgresNotifierStore : public NotifierStore {
 public:
  explicit PostgresNotifierStore(postgres::ConnectionPool& pool);

  absl::StatusOr<int64_t> Cursor() override;
  absl::StatusOr<int> RecordEvent(int64_t sequence, const std::vector<NewDelivery>& deliveries) override;
  absl::StatusOr<std::vector<v1::Subscription>> ListSubscriptions() override;
  absl::Status CreateSubscription(const v1::Subscription& s) override;
  absl::Status DeleteSubscription(const std::string& name) override;
  absl::Status ReplaceConfigSubscriptions(const std::vector<v1::Subscription>& subs) override;
  absl::StatusOr<std::vector<DueDelivery>> ClaimDue(int limit, absl::Duration lease) override;
  absl::Status MarkDelivered(int64_t id) override;
  absl::Status MarkFailed(int64_t id, const std::string& error, std::optional<absl::Duration> retry_in) override;
  absl::StatusOr<std::vector<v1::Delivery>> ListDeliveries(v1::DeliveryState state, const std::string& subscription,
                                                          int64_t before_id, int limit) override;
  absl::StatusOr<DeliveryCounts> Counts() override;

 private:
  postgres::ConnectionPool& pool_;
};

}  // namespace ferry::notifier
