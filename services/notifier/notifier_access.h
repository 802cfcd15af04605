#pragma once

#include "common/auth/access_control.h"

namespace ferry::notifier {

// The access rules of the Notifier service's RPCs (docs/security.md has the
// table): reading subscriptions and deliveries takes view permission;
// making or removing a subscription takes admin (a subscription sends the
// suite's events to a place of the caller's choosing).
void AddNotifierRules(auth::AccessControl& access);

}  // namespace ferry::notifier
