#include "services/planner/planner_access.h"

#include "common/auth/request_scope.h"
#include "common/status/status_macros.h"
#include "ferry/v1/planner.pb.h"

namespace ferry::planner {
namespace {

using auth::Permission;
using auth::Rule;
using auth::Scope;

Rule Scoped(Permission permission, auth::ScopeOf scope, std::vector<std::string> services = {}) {
  Rule r;
  r.permission = permission;
  r.scope = std::move(scope);
  r.services = std::move(services);
  return r;
}

// Reading: anyone with view permission somewhere, and the deployer.
Rule View() { return Scoped(Permission::kView, nullptr, {"deployer"}); }

Rule ServicesOnly(std::vector<std::string> services) {
  Rule r;
  r.services = std::move(services);
  r.services_only = true;
  return r;
}

absl::StatusOr<Scope> FieldsScope(const google::protobuf::Message& m) { return auth::ScopeOfFields(m); }

// A plan's scope: its own application and environment.
auth::ScopeOf PlanScope(Planner* planner) {
  return [planner](const google::protobuf::Message& m) -> absl::StatusOr<Scope> {
    const google::protobuf::FieldDescriptor* f = m.GetDescriptor()->FindFieldByName("plan_id");
    std::string id = f == nullptr ? "" : m.GetReflection()->GetString(m, f);
    if (id.empty()) return absl::InvalidArgumentError("plan_id: is required");
    ASSIGN_OR_RETURN(v1::Plan plan, planner->GetPlan(id, v1::PLAN_VIEW_BASIC));
    Scope scope;
    scope.application = plan.application_id();
    scope.environment = plan.environment_id();
    return scope;
  };
}

}  // namespace

void AddPlannerRules(auth::AccessControl& access, Planner* planner) {
  // Applications: admin of that application in every environment.
  auto app_scope = [](const google::protobuf::Message& m) -> absl::StatusOr<Scope> {
    Scope s;
    if (const auto* r = dynamic_cast<const v1::CreateApplicationRequest*>(&m)) s.application = r->application().id();
    if (const auto* r = dynamic_cast<const v1::UpdateApplicationRequest*>(&m)) s.application = r->application().id();
    if (const auto* r = dynamic_cast<const v1::DeleteApplicationRequest*>(&m)) s.application = r->id();
    return s;
  };
  // Environments: admin of every application in that environment.
  auto env_scope = [](const google::protobuf::Message& m) -> absl::StatusOr<Scope> {
    Scope s;
    if (const auto* r = dynamic_cast<const v1::CreateEnvironmentRequest*>(&m)) s.environment = r->environment().id();
    if (const auto* r = dynamic_cast<const v1::UpdateEnvironmentRequest*>(&m)) s.environment = r->environment().id();
    if (const auto* r = dynamic_cast<const v1::DeleteEnvironmentRequest*>(&m)) s.environment = r->id();
    return s;
  };
  access.AddRule("ferry.v1.CreateApplicationRequest", Scoped(Permission::kAdmin, app_scope));
  access.AddRule("ferry.v1.GetApplicationRequest", View());
  // The notifier reads the subscriptions applications declare.
  access.AddRule("ferry.v1.ListApplicationsRequest", Scoped(Permission::kView, nullptr, {"deployer", "notifier"}));
  access.AddRule("ferry.v1.UpdateApplicationRequest", Scoped(Permission::kAdmin, app_scope));
  access.AddRule("ferry.v1.DeleteApplicationRequest", Scoped(Permission::kAdmin, app_scope));
  access.AddRule("ferry.v1.CreateEnvironmentRequest", Scoped(Permission::kAdmin, env_scope));
  access.AddRule("ferry.v1.GetEnvironmentRequest", View());
  access.AddRule("ferry.v1.ListEnvironmentsRequest", View());
  access.AddRule("ferry.v1.UpdateEnvironmentRequest", Scoped(Permission::kAdmin, env_scope));
  access.AddRule("ferry.v1.DeleteEnvironmentRequest", Scoped(Permission::kAdmin, env_scope));
  // Registers and changes applications and environments of every scope.
  access.AddRule("ferry.v1.ApplyDeclarativeConfigRequest", Scoped(Permission::kAdmin, nullptr));
  access.AddRule("ferry.v1.GetPlanRequest", View());
  access.AddRule("ferry.v1.ListPlansRequest", View());
  access.AddRule("ferry.v1.ListPlanManifestsRequest", View());
  // Pull-request previews: what a change would do, like plans (docs/previews.md).
  access.AddRule("ferry.v1.ListPullRequestPreviewsRequest", View());
  access.AddRule("ferry.v1.GetPullRequestPreviewRequest", View());
  access.AddRule("ferry.v1.ApprovePlanRequest", Scoped(Permission::kApprove, PlanScope(planner)));
  access.AddRule("ferry.v1.RejectPlanRequest", Scoped(Permission::kApprove, PlanScope(planner)));
  // Renders the application's repository (work): operators of it.
  access.AddRule("ferry.v1.PreviewPlanRequest", Scoped(Permission::kOperate, FieldsScope));
  // A sync; with approve set, the handler also checks kApprove. The deployer
  // asks for rollback plans on behalf of the person who asked it.
  access.AddRule("ferry.v1.PlanRevisionRequest", Scoped(Permission::kOperate, FieldsScope, {"deployer"}));
  // The deployer refreshes an application after a person unpins it there
  // (on their behalf, after checking their operate permission itself).
  access.AddRule("ferry.v1.RefreshApplicationRequest", Scoped(Permission::kOperate, FieldsScope, {"deployer"}));
  access.AddRule("ferry.v1.WatchApprovedPlansRequest", ServicesOnly({"deployer"}));
  access.AddRule("ferry.v1.AcknowledgePlanRequest", ServicesOnly({"deployer"}));
  access.AddRule("ferry.v1.ReportPlanResultRequest", ServicesOnly({"deployer"}));
  access.AddRule("ferry.v1.ReportPlanResultsRequest", ServicesOnly({"deployer"}));
}

}  // namespace ferry::planner
