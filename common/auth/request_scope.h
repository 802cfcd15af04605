#pragma once

#include <google/protobuf/message.h>

#include "common/auth/policy.h"

namespace ferry::auth {

// The scope a request names with its own `application_id` and
// `environment_id` string fields (either may be absent or empty: an empty
// field is a scope across every application or environment, which only an
// unrestricted binding covers). The usual ScopeOf of RPCs that act on one
// application in one environment: PlanRevision, Rollback, Pin, ...
Scope ScopeOfFields(const google::protobuf::Message& request);

}  // namespace ferry::auth
