#include "services/notifier/subscription_manager.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/api/page_size.h"
#include "common/status/status_macros.h"
#include "services/notifier/notification_builder.h"
#include "services/notifier/notification_event.h"
#include "common/notifications/subscription_rules.h"

namespace ferry::notifier {

using notifications::ValidateSubscription;

absl::StatusOr<v1::Subscription> SubscriptionManager::Create(v1::Subscription s, const v1::Actor& actor) {
  RETURN_IF_ERROR(ValidateSubscription(s, "subscription"));
  s.set_source("api");
  s.clear_create_time();
  v1::Event e;
  e.set_action(v1::AUDIT_ACTION_SUBSCRIPTION_CREATED);
  *e.mutable_actor() = actor;
  e.mutable_subject()->set_application_id(s.application_id());
  e.mutable_subject()->set_environment_id(s.environment_id());
  std::string events;
  for (int ev : s.events()) {
    absl::StrAppend(&events, events.empty() ? "" : ",", EventName(static_cast<v1::NotificationEvent>(ev)));
  }
  const std::string sink = absl::AsciiStrToLower(v1::SinkKind_Name(s.sink().kind()).substr(10));
  e.set_message(absl::StrCat("subscription ", s.name(), " created: ", sink, " for ", events));
  e.set_idempotency_key("subscription-created/" + s.name());
  auto& f = *e.mutable_details()->mutable_fields();
  f["subscription"].set_string_value(s.name());
  f["sink"].set_string_value(sink);
  f["events"].set_string_value(events);
  RETURN_IF_ERROR(store_.CreateSubscription(s, e));
  ASSIGN_OR_RETURN(std::vector<v1::Subscription> all, store_.ListSubscriptions());
  for (v1::Subscription& one : all) {
    if (one.name() == s.name()) return one;
  }
  return absl::AbortedError("subscription " + s.name() + " was deleted meanwhile");
}

absl::Status SubscriptionManager::Delete(const std::string& name, const v1::Actor& actor) {
  if (name.empty()) return absl::InvalidArgumentError("name: required");
  v1::Event e;
  e.set_action(v1::AUDIT_ACTION_SUBSCRIPTION_DELETED);
  *e.mutable_actor() = actor;
  e.set_message(absl::StrCat("subscription ", name, " deleted"));
  e.set_idempotency_key("subscription-deleted/" + name);
  (*e.mutable_details()->mutable_fields())["subscription"].set_string_value(name);
  return store_.DeleteSubscription(name, e);
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

absl::StatusOr<v1::TestSubscriptionResponse> SubscriptionManager::Test(const std::string& name,
                                                                     v1::NotificationEvent event,
                                                                     const v1::Actor& actor) {
  if (name.empty()) return absl::InvalidArgumentError("name: required");
  if (!v1::NotificationEvent_IsValid(event)) return absl::InvalidArgumentError("event: not a notification event");
  if (sender_ == nullptr || clock_ == nullptr) return absl::UnimplementedError("this notifier sends no tests");
  ASSIGN_OR_RETURN(std::vector<v1::Subscription> all, store_.ListSubscriptions());
  const v1::Subscription* sub = nullptr;
  for (const v1::Subscription& s : all) {
    if (s.name() == name) sub = &s;
  }
  if (sub == nullptr) return absl::NotFoundError("no subscription " + name);
  if (event == v1::NOTIFICATION_EVENT_UNSPECIFIED) event = static_cast<v1::NotificationEvent>(sub->events(0));
  const absl::Time now = clock_->Now();
  // A made-up event: what the template can show, marked as a test.
  v1::Event e;
  e.set_service("notifier");
  *e.mutable_actor() = actor;
  e.mutable_time()->set_seconds(absl::ToUnixSeconds(now));
  e.mutable_subject()->set_application_id(sub->application_id().empty() ? "example" : sub->application_id());
  e.mutable_subject()->set_environment_id(sub->environment_id().empty() ? "example" : sub->environment_id());
  e.set_message(absl::StrCat("test notification for subscription ", name, ", sent by ", actor.id()));
  v1::TestSubscriptionResponse out;
  out.set_delivery_id(absl::StrCat("test/", name, "/", absl::ToUnixMicros(now)));
  ASSIGN_OR_RETURN(NewDelivery d, BuildNotification(*sub, e, event, out.delivery_id()));
  out.set_target(d.target);
  const absl::Status sent = sender_->Send(d.request);
  v1::Event audit;
  audit.set_action(v1::AUDIT_ACTION_SUBSCRIPTION_TESTED);
  *audit.mutable_actor() = actor;
  audit.mutable_subject()->set_application_id(sub->application_id());
  audit.mutable_subject()->set_environment_id(sub->environment_id());
  audit.set_message(absl::StrCat("test notification to subscription ", name, " (", d.target, "): ",
                                 sent.ok() ? "delivered" : std::string(sent.message())));
  audit.set_idempotency_key(out.delivery_id());
  auto& f = *audit.mutable_details()->mutable_fields();
  f["subscription"].set_string_value(name);
  f["event"].set_string_value(EventName(event));
  f["delivered"].set_bool_value(sent.ok());
  RETURN_IF_ERROR(store_.RecordAuditEvent(audit));
  if (!sent.ok()) return sent;
  return out;
}

}  // namespace ferry::notifier
