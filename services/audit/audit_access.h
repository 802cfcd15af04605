#pragma once

#include "common/auth/access_control.h"

namespace ferry::audit {

// The access rules of the Audit service's RPCs (docs/security.md has the
// table): only the suite's services append; reading takes view permission.
void AddAuditRules(auth::AccessControl& access);

}  // namespace ferry::audit
