#pragma once

#include "ferry/v1/planner.pb.h"

namespace ferry::planner {

// One job: the PLAN_VIEW_BASIC form of a plan. Strips manifests, json_patch
// and unified_diff. A pure function; thread-safe.
void ToBasicView(v1::Plan& plan);

}  // namespace ferry::planner
