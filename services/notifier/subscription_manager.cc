#include "services/notifier/subscription_manager.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/api/page_size.h"
#include "common/status/status_macros.h"
#include "services/notifier/subscription_rules.h"

namespace ferry::notifier {

absl::StatusOr<v1::Subscription> SubscriptionManager::Create(v1::Subscription s) {
  RETURN_IF_ERROR(ValidateSubscription(s, "subscription"));
  s.set_source("api");
  s.clear_create_time();
  RETURN_IF_ERROR(store_.CreateSubscription(s));
  ASSIGN_OR_RETURN(std::vector<v1::Subscription> all, store_.ListSubscriptions());
  for (v1::Subscription& one : all) {
    if (one.name() == s.name()) return one;
  }
  return absl::AbortedError("subscription " + s.name() + " was deleted meanwhile");
}

absl::Status SubscriptionManager::Delete(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("name: required");
  return store_.DeleteSubscription(name);
}

absl::StatusOr<v1::ListSubscriptionsResponse> SubscriptionManager::List() {
  ASSIGN_OR_RETURN(std::vector<v1::Subscription> all, store_.ListSubscriptions());
  v1::ListSubscriptionsResponse out;
  for (v1::Subscription& s : all) *out.add_subscriptions() = std::move(s);
  return out;
}

absl::StatusOr<v1::ListDeliveriesResponse> SubscriptionManager::ListDeliveries(const v1::ListDeliveriesRequest& r) {
  ASSIGN_OR_RETURN(int size, api::PageSize(r.page_size()));
  int64_t before = 0;
  if (!r.page_token().empty() && (!absl::SimpleAtoi(r.page_token(), &before) || before <= 0)) {
    return absl::InvalidArgumentError("page_token: not a token from ListDeliveries");
  }
  if (!v1::DeliveryState_IsValid(r.state())) return absl::InvalidArgumentError("state: unknown");
  ASSIGN_OR_RETURN(std::vector<v1::Delivery> page, store_.ListDeliveries(r.state(), r.subscription(), before, size + 1));
  v1::ListDeliveriesResponse out;
  for (size_t i = 0; i < page.size() && static_cast<int>(i) < size; ++i) *out.add_deliveries() = page[i];
  if (static_cast<int>(page.size()) > size) out.set_next_page_token(absl::StrCat(page[size - 1].id()));
  return out;
}

}  // namespace ferry::notifier
