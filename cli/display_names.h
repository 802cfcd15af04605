#pragma once

// Ferry's enums as people read them in tables ("Synced", "Degraded",
// "AwaitingApproval") and their colours; and the words the command line
// accepts for them ("pending", "manual").

#include <optional>
#include <string>

#include "cli/output.h"
#include "ferry/v1/audit.pb.h"
#include "ferry/v1/common.pb.h"
#include "ferry/v1/deployer.pb.h"
#include "ferry/v1/planner.pb.h"
#include "ferry/v1/repo_watcher.pb.h"

namespace ferry::cli {

std::string SyncName(v1::SyncStatus s);
std::string HealthName(v1::HealthStatus s);
std::string DriftName(v1::DriftStatus s);
std::string PlanStateName(v1::PlanState s);
std::string HoldName(v1::HoldReason r);
std::string TriggerName(v1::PlanTrigger t);
std::string DeploymentStateName(v1::DeploymentState s);
std::string DeploymentKindName(v1::DeploymentKind k);
std::string StepKindName(v1::StepKind k);
std::string StepResultName(v1::StepResult r);
std::string ActionName(v1::ObjectAction a);
std::string RenderName(v1::RenderMethod m);
std::string ApprovalName(v1::ApprovalPolicy p);
std::string SignatureName(v1::SignatureResult r);
// "REVISION_DETECTED" for AUDIT_ACTION_REVISION_DETECTED.
std::string AuditActionName(v1::AuditAction a);

Color SyncColor(v1::SyncStatus s);
Color HealthColor(v1::HealthStatus s);
Color PlanStateColor(v1::PlanState s);
Color DeploymentStateColor(v1::DeploymentState s);

// "Kind/name" or "Kind/namespace/name".
std::string ObjectName(const v1::ObjectRef& o);
// The actor's id ("ferry" for automation), "-" when unset.
std::string ActorName(const v1::Actor& a);

// Words accepted on the command line, case-insensitive, with or without
// the enum prefix: "pending", "PLAN_STATE_PENDING".
std::optional<v1::PlanState> ParsePlanState(const std::string& word);
std::optional<v1::AuditAction> ParseAuditAction(const std::string& word);
std::optional<v1::DeploymentState> ParseDeploymentState(const std::string& word);

bool IsTerminal(v1::DeploymentState s);
bool IsTerminal(v1::PlanState s);

}  // namespace ferry::cli
