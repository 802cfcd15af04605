#include "cli/display_names.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

namespace ferry::cli {
namespace {

// SYNC_STATUS_OUT_OF_SYNC with prefix SYNC_STATUS_ -> OutOfSync.
std::string Camel(const std::string& full, absl::string_view prefix) {
  absl::string_view rest = full;
  absl::ConsumePrefix(&rest, prefix);
  std::string out;
  bool up = true;
  for (char c : rest) {
    if (c == '_') {
      up = true;
      continue;
    }
    out += up ? absl::ascii_toupper(c) : absl::ascii_tolower(c);
    up = false;
  }
  return out.empty() ? "-" : out;
}

template <typename E, typename ParseFn>
std::optional<E> ParseEnum(const std::string& word, absl::string_view prefix, ParseFn parse_fn) {
  std::string w = absl::AsciiStrToUpper(word);
  absl::StrReplaceAll({{"-", "_"}}, &w);
  E value;
  if (parse_fn(w, &value)) return value;
  if (parse_fn(absl::StrCat(prefix, w), &value)) return value;
  // CamelCase as tables show it: "OutOfSync" -> OUT_OF_SYNC.
  std::string snake;
  for (size_t i = 0; i < word.size(); ++i) {
    if (i > 0 && absl::ascii_isupper(word[i]) && absl::ascii_islower(word[i - 1])) snake += '_';
    snake += absl::ascii_toupper(word[i]);
  }
  if (parse_fn(absl::StrCat(prefix, snake), &value)) return value;
  return std::nullopt;
}

}  // namespace

std::string SyncName(v1::SyncStatus s) {
  if (s == v1::SYNC_STATUS_UNSPECIFIED) return "-";
  return Camel(v1::SyncStatus_Name(s), "SYNC_STATUS_");
}
std::string HealthName(v1::HealthStatus s) {
  if (s == v1::HEALTH_STATUS_UNSPECIFIED) return "-";
  return Camel(v1::HealthStatus_Name(s), "HEALTH_STATUS_");
}
std::string DriftName(v1::DriftStatus s) { return Camel(v1::DriftStatus_Name(s), "DRIFT_STATUS_"); }
std::string PlanStateName(v1::PlanState s) { return Camel(v1::PlanState_Name(s), "PLAN_STATE_"); }
std::string HoldName(v1::HoldReason r) { return Camel(v1::HoldReason_Name(r), "HOLD_REASON_"); }
std::string TriggerName(v1::PlanTrigger t) { return Camel(v1::PlanTrigger_Name(t), "PLAN_TRIGGER_"); }
std::string DeploymentStateName(v1::DeploymentState s) {
  return Camel(v1::DeploymentState_Name(s), "DEPLOYMENT_STATE_");
}
std::string DeploymentKindName(v1::DeploymentKind k) { return Camel(v1::DeploymentKind_Name(k), "DEPLOYMENT_KIND_"); }
std::string StepKindName(v1::StepKind k) { return Camel(v1::StepKind_Name(k), "STEP_KIND_"); }
std::string StepResultName(v1::StepResult r) { return Camel(v1::StepResult_Name(r), "STEP_RESULT_"); }
std::string ActionName(v1::ObjectAction a) { return Camel(v1::ObjectAction_Name(a), "OBJECT_ACTION_"); }
std::string RenderName(v1::RenderMethod m) {
  return absl::AsciiStrToLower(Camel(v1::RenderMethod_Name(m), "RENDER_METHOD_"));
}
std::string ApprovalName(v1::ApprovalPolicy p) {
  if (p == v1::APPROVAL_POLICY_UNSPECIFIED) return "manual";
  return absl::AsciiStrToLower(Camel(v1::ApprovalPolicy_Name(p), "APPROVAL_POLICY_"));
}
std::string SignatureName(v1::SignatureResult r) { return Camel(v1::SignatureResult_Name(r), "SIGNATURE_RESULT_"); }
std::string AuditActionName(v1::AuditAction a) {
  absl::string_view n = v1::AuditAction_Name(a);
  absl::ConsumePrefix(&n, "AUDIT_ACTION_");
  return std::string(n);
}

Color SyncColor(v1::SyncStatus s) {
  switch (s) {
    case v1::SYNC_STATUS_SYNCED: return Color::kGreen;
    case v1::SYNC_STATUS_OUT_OF_SYNC: return Color::kYellow;
    default: return Color::kNone;
  }
}
Color HealthColor(v1::HealthStatus s) {
  switch (s) {
    case v1::HEALTH_STATUS_HEALTHY: return Color::kGreen;
    case v1::HEALTH_STATUS_PROGRESSING: return Color::kCyan;
    case v1::HEALTH_STATUS_DEGRADED:
    case v1::HEALTH_STATUS_MISSING: return Color::kRed;
    default: return Color::kNone;
  }
}
Color PlanStateColor(v1::PlanState s) {
  switch (s) {
    case v1::PLAN_STATE_SUCCEEDED: return Color::kGreen;
    case v1::PLAN_STATE_PENDING:
    case v1::PLAN_STATE_APPROVED: return Color::kYellow;
    case v1::PLAN_STATE_EXECUTING: return Color::kCyan;
    case v1::PLAN_STATE_FAILED:
    case v1::PLAN_STATE_ROLLED_BACK:
    case v1::PLAN_STATE_REJECTED: return Color::kRed;
    default: return Color::kNone;
  }
}
Color DeploymentStateColor(v1::DeploymentState s) {
  switch (s) {
    case v1::DEPLOYMENT_STATE_SUCCEEDED: return Color::kGreen;
    case v1::DEPLOYMENT_STATE_RUNNING:
    case v1::DEPLOYMENT_STATE_PENDING: return Color::kCyan;
    case v1::DEPLOYMENT_STATE_FAILED:
    case v1::DEPLOYMENT_STATE_ROLLED_BACK: return Color::kRed;
    default: return Color::kNone;
  }
}

std::string ObjectName(const v1::ObjectRef& o) {
  if (o.namespace_().empty()) return absl::StrCat(o.kind(), "/", o.name());
  return absl::StrCat(o.kind(), "/", o.namespace_(), "/", o.name());
}

std::string ActorName(const v1::Actor& a) { return a.id().empty() ? "-" : a.id(); }

std::optional<v1::PlanState> ParsePlanState(const std::string& word) {
  return ParseEnum<v1::PlanState>(word, "PLAN_STATE_",
                                  [](const std::string& s, v1::PlanState* v) { return v1::PlanState_Parse(s, v); });
}
std::optional<v1::AuditAction> ParseAuditAction(const std::string& word) {
  return ParseEnum<v1::AuditAction>(word, "AUDIT_ACTION_",
                                    [](const std::string& s, v1::AuditAction* v) { return v1::AuditAction_Parse(s, v); });
}
std::optional<v1::DeploymentState> ParseDeploymentState(const std::string& word) {
  return ParseEnum<v1::DeploymentState>(
      word, "DEPLOYMENT_STATE_", [](const std::string& s, v1::DeploymentState* v) { return v1::DeploymentState_Parse(s, v); });
}

bool IsTerminal(v1::DeploymentState s) {
  return s == v1::DEPLOYMENT_STATE_SUCCEEDED || s == v1::DEPLOYMENT_STATE_FAILED ||
         s == v1::DEPLOYMENT_STATE_ROLLED_BACK;
}
bool IsTerminal(v1::PlanState s) {
  return s == v1::PLAN_STATE_SUCCEEDED || s == v1::PLAN_STATE_FAILED || s == v1::PLAN_STATE_ROLLED_BACK ||
         s == v1::PLAN_STATE_REJECTED || s == v1::PLAN_STATE_SUPERSEDED;
}

}  // namespace ferry::cli
