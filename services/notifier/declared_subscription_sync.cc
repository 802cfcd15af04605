#include "services/notifier/declared_subscription_sync.h"

#include "absl/strings/str_cat.h"
#include "common/logging/logger.h"
#include "common/notifications/subscription_rules.h"
#include "common/status/status_macros.h"

namespace ferry::notifier {
namespace {

v1::Event ChangeEvent(const v1::Subscription* before, const v1::Subscription* after) {
  const v1::Subscription& s = after != nullptr ? *after : *before;
  v1::Event e;
  e.set_action(after != nullptr ? v1::AUDIT_ACTION_SUBSCRIPTION_CREATED : v1::AUDIT_ACTION_SUBSCRIPTION_DELETED);
  e.mutable_actor()->set_kind(v1::ACTOR_KIND_SYSTEM);
  e.mutable_actor()->set_id("ferry");
  e.mutable_subject()->set_application_id(s.application_id());
  e.mutable_subject()->set_environment_id(s.environment_id());
  const char* what = after == nullptr ? "removed" : before == nullptr ? "added" : "changed";
  e.set_message(absl::StrCat("subscription ", s.name(), " ", what, " (declared by application ", s.application_id(),
                             ")"));
  e.set_idempotency_key(absl::StrCat("subscription-declared/", s.name()));
  auto& f = *e.mutable_details()->mutable_fields();
  f["subscription"].set_string_value(s.name());
  f["source"].set_string_value("declared");
  f["change"].set_string_value(what);
  return e;
}

}  // namespace

absl::StatusOr<int> DeclaredSubscriptionSync::SyncIfStale() {
  if (!stale_) return 0;
  return Sync();
}

absl::StatusOr<int> DeclaredSubscriptionSync::Sync() {
  MutexLock lock(&mu_);
  // Cleared before reading: an application event meanwhile marks it again.
  stale_ = false;
  absl::StatusOr<int> synced = SyncLocked();
  if (!synced.ok()) stale_ = true;
  return synced;
}

absl::StatusOr<int> DeclaredSubscriptionSync::SyncLocked() {
  ASSIGN_OR_RETURN(std::vector<v1::Application> apps, applications_.ListApplications());
  std::vector<v1::Subscription> declared;
  for (const v1::Application& app : apps) {
    for (int i = 0; i < app.notifications_size(); ++i) {
      v1::Subscription s = app.notifications(i);
      const std::string field = absl::StrCat("application ", app.id(), " notifications[", i, "]");
      if (absl::Status ok = notifications::ValidateDeclaredSubscription(s, app.id(), field); !ok.ok()) {
        logging::Error("declared subscription left out", {{"application", app.id()}, {"error", ok.ToString()}});
        continue;
      }
      s.set_name(absl::StrCat(app.id(), "/", s.name()));
      s.set_source("declared");
      declared.push_back(std::move(s));
    }
  }
  NotifierStore::DeclaredChangeEvent audit = [](const v1::Subscription* before, const v1::Subscription* after) {
    return ChangeEvent(before, after);
  };
  ASSIGN_OR_RETURN(int changed, store_.ReplaceDeclaredSubscriptions(declared, audit));
  if (changed > 0) {
    logging::Info("declared subscriptions synced", {{"count", declared.size()}, {"changed", changed}});
  }
  return changed;
}

}  // namespace ferry::notifier
