#pragma once

// How plans read on a terminal: a summary (what, where, which commit, why
// it waits), and the per-object unified diff, coloured where colour is on.
// Shared by plan show, plan preview and app diff.

#include <string>

#include "absl/status/status.h"
#include "cli/connection.h"
#include "cli/output.h"

namespace ferry::cli {

// Fills the actions' unified_diff (and json_patch) of a plan whose details
// were omitted (a big plan), paging through ListPlanManifests.
absl::Status FetchPlanDetails(Connection& conn, v1::Plan* plan);

// Summary lines: id, application -> environment, state, trigger, commits,
// counts of creates/updates/deletes, hold reason with the command to run.
void PrintPlanSummary(const v1::Plan& plan, const Output& out, absl::Time now);

// Every changing action's unified diff, one block per object. Returns the
// number of objects that change.
int PrintPlanDiff(const v1::Plan& plan, const Output& out);

// A unified diff's lines, coloured (+ green, - red, @@ cyan).
std::string PaintDiff(const std::string& diff, const Output& out);

// One row per plan, for plan list.
nlohmann::json PlanJson(const v1::Plan& plan);

}  // namespace ferry::cli
