#pragma once

#include <string>

#include "absl/status/status.h"
#include "ferry/v1/planner.pb.h"

namespace ferry::planner {

// A render failure is an absl::Status carrying the offending repository path
// and line as payloads. It means "the inputs are bad": the plan fails with
// this message and is never executed. Any other non-OK status from the render
// pipeline is an infrastructure error (retry later) and makes no plan.

// Builds a render failure. `line` 0 means unknown.
absl::Status RenderFailure(absl::StatusCode code, const std::string& message, const std::string& path = "",
                           int line = 0);

// True when `status` was built by RenderFailure.
bool IsRenderFailure(const absl::Status& status);

// The plan failure described by a render failure.
v1::PlanFailure ToPlanFailure(const absl::Status& status);

}  // namespace ferry::planner
