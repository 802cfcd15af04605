#pragma once

#include <string>

#include "common/auth/policy.h"

namespace ferry::planner {

// The seam to the access policy's separation of duties (#16): how many
// distinct approvals a plan in an environment needs, and whether its
// commit's author or its requester may give one. Implementations are
// thread-safe and answer from the policy in force at the call (a reload
// applies to the next approval). Only the plain auth::ApprovalRule struct
// is used here: the logic library does not link ferry_auth.
class ApprovalPolicy {
 public:
  virtual ~ApprovalPolicy() = default;
  // The rule for `environment` (an environment id); {1, false, false} when
  // the policy names none.
  virtual auth::ApprovalRule RuleFor(const std::string& environment) const = 0;
};

// One approval by anyone, in every environment: Ferry without a policy.
class DefaultApprovalPolicy final : public ApprovalPolicy {
 public:
  auth::ApprovalRule RuleFor(const std::string&) const override { return auth::ApprovalRule{}; }
};

}  // namespace ferry::planner
