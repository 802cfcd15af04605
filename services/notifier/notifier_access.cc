#include "services/notifier/notifier_access.h"

namespace ferry::notifier {

void AddNotifierRules(auth::AccessControl& access) {
  using auth::Permission;
  using auth::Rule;
  Rule view;
  view.permission = Permission::kView;
  Rule admin;
  admin.permission = Permission::kAdmin;
  access.AddRule("ferry.v1.CreateSubscriptionRequest", admin);
  access.AddRule("ferry.v1.DeleteSubscriptionRequest", admin);
  access.AddRule("ferry.v1.ListSubscriptionsRequest", view);
  access.AddRule("ferry.v1.ListDeliveriesRequest", view);
  // Sends to the sink with its secrets, as a delivery would.
  access.AddRule("ferry.v1.TestSubscriptionRequest", admin);
}

}  // namespace ferry::notifier
