#pragma once

#include "common/auth/access_control.h"
#include "services/planner/planner.h"

namespace ferry::planner {

// The access rules of the Planner service's RPCs (docs/security.md has the
// table): who may call each, with which permission, where. Plans are scoped
// by their own application and environment, looked up through `planner`.
void AddPlannerRules(auth::AccessControl& access, Planner* planner);

}  // namespace ferry::planner
