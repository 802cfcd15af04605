#include "services/deployer/deployer_access.h"

#include "common/auth/request_scope.h"
#include "ferry/v1/deployer.pb.h"

namespace ferry::deployer {

void AddDeployerRules(auth::AccessControl& access) {
  using auth::Permission;
  using auth::Rule;
  using auth::Scope;
  auto fields = [](const google::protobuf::Message& m) -> absl::StatusOr<Scope> { return auth::ScopeOfFields(m); };
  auto settings = [](const google::protobuf::Message& m) -> absl::StatusOr<Scope> {
    const auto& r = dynamic_cast<const v1::UpdateDriftSettingsRequest&>(m);
    return auth::ScopeOfFields(r.settings());
  };
  auto rule = [](Permission permission, auth::ScopeOf scope) {
    Rule r;
    r.permission = permission;
    r.scope = std::move(scope);
    return r;
  };
  Rule view = rule(Permission::kView, nullptr);
  view.services = {"planner"};
  Rule planner_only;
  planner_only.services = {"planner"};
  planner_only.services_only = true;
  access.AddRule("ferry.v1.GetDeploymentRequest", view);
  access.AddRule("ferry.v1.ListDeploymentsRequest", view);
  access.AddRule("ferry.v1.DiffDeploymentsRequest", view);
  access.AddRule("ferry.v1.WatchDeploymentRequest", view);
  access.AddRule("ferry.v1.RollbackRequest", rule(Permission::kOperate, fields));
  access.AddRule("ferry.v1.PinRequest", rule(Permission::kOperate, fields));
  access.AddRule("ferry.v1.UnpinRequest", rule(Permission::kOperate, fields));
  access.AddRule("ferry.v1.GetLiveStateRequest", view);
  // The planner diffs against live state; people use GetLiveState.
  access.AddRule("ferry.v1.ObserveLiveStateRequest", planner_only);
  access.AddRule("ferry.v1.GetDriftSettingsRequest", view);
  access.AddRule("ferry.v1.UpdateDriftSettingsRequest", rule(Permission::kOperate, settings));
}

}  // namespace ferry::deployer
