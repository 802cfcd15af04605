#pragma once

#include "common/auth/access_control.h"
#include "services/planner/approval_policy.h"
#include "services/planner/planner.h"

namespace ferry::planner {

// The access rules of the Planner service's RPCs (docs/security.md has the
// table): who may call each, with which permission, where. Plans are scoped
// by their own application and environment, looked up through `planner`.
void AddPlannerRules(auth::AccessControl& access, Planner* planner);

// Separation of duties from the access policy in force (its approvals
// section); one approval by anyone when `policy` is null (access control
// off).
class PolicyApprovalRules final : public ApprovalPolicy {
 public:
  explicit PolicyApprovalRules(const auth::PolicySource* policy) : policy_(policy) {}
  auth::ApprovalRule RuleFor(const std::string& environment) const override {
    std::shared_ptr<const auth::Policy> p = policy_ == nullptr ? nullptr : policy_->Current();
    return p == nullptr ? auth::ApprovalRule{} : p->ApprovalRuleFor(environment);
  }

 private:
  const auth::PolicySource* policy_;
};

}  // namespace ferry::planner
