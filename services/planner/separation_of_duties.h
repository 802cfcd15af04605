#pragma once

#include <string>

#include "absl/status/status.h"
#include "common/auth/policy.h"
#include "ferry/v1/planner.pb.h"

namespace ferry::planner {

// One job: whether `approver` may approve `plan` under the environment's
// separation-of-duties `rule` (common/auth/policy.h ApprovalRule):
//   distinct_from_requester: approver.id differs from plan.requested_by.id
//     (exact; the requester of an automatic plan is "ferry");
//   distinct_from_author: approver.id differs from the target commit's
//     author (plan.target_author) e-mail and name, compared without regard
//     to case (Actor.id is a user name or an e-mail address). A plan whose
//     author the planner does not know is refused under this rule: it
//     cannot be checked.
// PERMISSION_DENIED naming the environment and the rule otherwise.
// Git's author identity is whatever the committer wrote: the check keeps an
// honest author from approving their own change, it does not prove
// authorship (signed commits and the signature policy do that).
absl::Status CheckSeparationOfDuties(const auth::ApprovalRule& rule, const v1::Plan& plan, const v1::Actor& approver);

// "1 of 2 approvals": how messages count approvals.
std::string ApprovalCount(int recorded, int required);

}  // namespace ferry::planner
