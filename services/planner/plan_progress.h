#pragma once

#include "ferry/v1/planner.pb.h"

namespace ferry::planner {

// A plan's progress: the fields its deployment changes (state,
// deployment_id, update_time and failure), which the deployer's
// acknowledgement and outcome of each plan set and nothing else of the plan
// changes with them. The store keeps them apart from the rest of the plan,
// so that such a change writes only them (issue #23: each rewrote the whole
// stored plan, twice per application deployed).

// A plan holding only `plan`'s progress fields.
v1::Plan ProgressOf(const v1::Plan& plan);

// Sets `plan`'s progress fields to `progress`'s (clearing those `progress`
// does not set); leaves its other fields as they are.
void SetProgress(const v1::Plan& progress, v1::Plan& plan);

// Moves `from`'s progress fields into `to`, leaving them cleared in `from`
// and `to`'s other fields as they are (no copy of their values).
void MoveProgress(v1::Plan& from, v1::Plan& to);

}  // namespace ferry::planner
