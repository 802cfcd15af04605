#include "cli/plan_view.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "cli/display_names.h"

namespace ferry::cli {

absl::Status FetchPlanDetails(Connection& conn, v1::Plan* plan) {
  if (!plan->details_omitted() || plan->id().empty()) return absl::OkStatus();
  v1::ListPlanManifestsRequest req;
  req.set_plan_id(plan->id());
  while (true) {
    v1::ListPlanManifestsResponse out;
    FERRY_RPC(conn, "planner", "read the details of plan " + plan->id(),
              conn.Planner().ListPlanManifests(conn.Call().get(), req, &out));
    for (const auto& d : out.action_details()) {
      if (d.index() >= 0 && d.index() < plan->actions_size()) {
        plan->mutable_actions(d.index())->set_unified_diff(d.unified_diff());
        plan->mutable_actions(d.index())->set_json_patch(d.json_patch());
      }
    }
    if (out.next_page_token().empty()) break;
    req.set_page_token(out.next_page_token());
  }
  plan->set_details_omitted(false);
  return absl::OkStatus();
}

void PrintPlanSummary(const v1::Plan& plan, const Output& out, absl::Time now) {
  int creates = 0, updates = 0, deletes = 0, noops = 0;
  for (const auto& a : plan.actions()) {
    switch (a.action()) {
      case v1::OBJECT_ACTION_CREATE: ++creates; break;
      case v1::OBJECT_ACTION_UPDATE: ++updates; break;
      case v1::OBJECT_ACTION_DELETE: ++deletes; break;
      default: ++noops;
    }
  }
  std::string title = plan.preview() ? "preview" : plan.id();
  out.Line(absl::StrCat(out.Paint(title, Color::kBold), "  ", plan.application_id(), " → ", plan.environment_id(),
                        plan.preview() ? " (nothing kept)"
                                       : "  " + out.Paint(PlanStateName(plan.state()), PlanStateColor(plan.state()))));
  out.Line(absl::StrCat("  revision:  ", plan.source_revision().sha().empty() ? "(first deploy)" : ShortSha(plan.source_revision().sha()),
                        " → ", ShortSha(plan.target_revision().sha()),
                        plan.target_revision().ref().empty() ? "" : " (" + plan.target_revision().ref() + ")",
                        plan.target_author().name().empty() ? "" : " by " + plan.target_author().name()));
  out.Line(absl::StrCat("  changes:   ", creates, " to create, ", updates, " to update, ", deletes, " to delete, ", noops,
                        " unchanged"));
  if (!plan.preview()) {
    out.Line(absl::StrCat("  trigger:   ", TriggerName(plan.trigger()), ", requested by ", ActorName(plan.requested_by()),
                          " ", Age(plan.create_time(), now), " ago"));
  }
  if (plan.has_decision() && !plan.decision().actor().id().empty()) {
    out.Line(absl::StrCat("  decision:  ", plan.decision().automatic() ? "approved automatically" : ActorName(plan.decision().actor()),
                          plan.decision().comment().empty() ? "" : " (" + plan.decision().comment() + ")"));
  }
  if (!plan.deployment_id().empty()) out.Line("  deployment: " + plan.deployment_id());
  if (plan.state() == v1::PLAN_STATE_PENDING) {
    out.Line(out.Paint(absl::StrCat("  waiting for approval in ", plan.environment_id(), ": run `ferry plan approve ", plan.id(),
                                    "` (or `ferry plan reject ", plan.id(), "`)"),
                       Color::kYellow));
  } else if (plan.hold_reason() != v1::HOLD_REASON_UNSPECIFIED) {
    out.Line(out.Paint(absl::StrCat("  held: ", HoldName(plan.hold_reason()),
                                    plan.hold_message().empty() ? "" : ": " + plan.hold_message()),
                       Color::kYellow));
  }
  if (!plan.failure().message().empty()) {
    out.Line(out.Paint(absl::StrCat("  failed: ", plan.failure().message(),
                                    plan.failure().path().empty() ? "" : absl::StrCat(" (", plan.failure().path(),
                                                                                       plan.failure().line() > 0 ? absl::StrCat(":", plan.failure().line()) : "", ")")),
                       Color::kRed));
  }
  if (!plan.superseded_by_plan_id().empty()) out.Line("  superseded by " + plan.superseded_by_plan_id());
  // The checks Ferry ran over the plan (ferry.yaml checks:), with their output.
  if (!plan.check_runs().empty()) out.Line("  checks:");
  for (const v1::CheckRun& run : plan.check_runs()) {
    const bool passed = run.result() == v1::CHECK_RUN_RESULT_PASSED;
    const double seconds = static_cast<double>(run.duration().seconds()) + run.duration().nanos() / 1e9;
    out.Line(absl::StrCat("    ", run.name(), "  ", out.Paint(passed ? "passed" : "FAILED", passed ? Color::kGreen : Color::kRed),
                          " (", run.description(), ", ", absl::StrFormat("%.1fs", seconds), ")"));
    std::string output = run.output();
    while (!output.empty() && output.back() == '\n') output.pop_back();
    if (!output.empty())
      for (absl::string_view line : absl::StrSplit(output, '\n')) out.Line(absl::StrCat("      | ", line));
    if (run.output_truncated()) out.Line("      | ... (output cut at the planner's --check-max-output-bytes)");
  }
}

std::string PaintDiff(const std::string& diff, const Output& out) {
  std::string result;
  for (absl::string_view line : absl::StrSplit(diff, '\n')) {
    std::string l(line);
    Color c = Color::kNone;
    if (absl::StartsWith(l, "+++") || absl::StartsWith(l, "---")) c = Color::kBold;
    else if (absl::StartsWith(l, "+")) c = Color::kGreen;
    else if (absl::StartsWith(l, "-")) c = Color::kRed;
    else if (absl::StartsWith(l, "@@")) c = Color::kCyan;
    absl::StrAppend(&result, out.Paint(l, c), "\n");
  }
  while (absl::EndsWith(result, "\n\n")) result.pop_back();
  return result;
}

int PrintPlanDiff(const v1::Plan& plan, const Output& out) {
  int changes = 0;
  for (const auto& a : plan.actions()) {
    if (a.action() == v1::OBJECT_ACTION_NOOP || a.action() == v1::OBJECT_ACTION_UNSPECIFIED) continue;
    ++changes;
    Color c = a.action() == v1::OBJECT_ACTION_CREATE ? Color::kGreen
              : a.action() == v1::OBJECT_ACTION_DELETE ? Color::kRed
                                                       : Color::kYellow;
    out.Line("");
    out.Line(out.Paint(absl::StrCat("=== ", ActionName(a.action()), " ", ObjectName(a.object()), " (wave ", a.wave(), ")"), c));
    if (a.unified_diff().empty()) {
      out.Line("(no textual diff)");
    } else {
      std::fputs(PaintDiff(a.unified_diff(), out).c_str(), out.stream());
    }
  }
  return changes;
}

nlohmann::json PlanJson(const v1::Plan& plan) {
  v1::Plan basic = plan;
  basic.clear_manifests();
  return ToJson(basic);
}

}  // namespace ferry::cli
