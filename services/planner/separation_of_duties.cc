#include "services/planner/separation_of_duties.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/planner/planner_events.h"

namespace ferry::planner {
namespace {

bool SameIdentity(const std::string& actor_id, const std::string& git_identity) {
  std::string a(absl::StripAsciiWhitespace(actor_id));
  std::string g(absl::StripAsciiWhitespace(git_identity));
  return !a.empty() && !g.empty() && absl::EqualsIgnoreCase(a, g);
}

}  // namespace

absl::Status CheckSeparationOfDuties(const auth::ApprovalRule& rule, const v1::Plan& plan, const v1::Actor& approver) {
  const std::string who = absl::StrCat("\"", approver.id(), "\"");
  const std::string where = absl::StrCat("environment \"", plan.environment_id(), "\"");
  if (rule.distinct_from_requester && approver.id() == plan.requested_by().id()) {
    return absl::PermissionDeniedError(
        absl::StrCat(who, " may not approve plan ", plan.id().empty() ? "" : plan.id() + " ",
                     "that they requested: ", where, " requires an approver other than the requester "
                     "(approvals.distinct_from_requester)"));
  }
  if (rule.distinct_from_author) {
    const v1::CommitAuthor& author = plan.target_author();
    if (author.name().empty() && author.email().empty()) {
      return absl::PermissionDeniedError(absl::StrCat(
          who, " may not approve plan ", plan.id().empty() ? "" : plan.id() + " ", "of commit ",
          ShortSha(plan.target_revision().sha()), ": ", where,
          " requires an approver other than the commit's author (approvals.distinct_from_author), and the planner "
          "does not know that commit's author (it never saw the commit in the repo-watcher's revisions)"));
    }
    if (SameIdentity(approver.id(), author.email()) || SameIdentity(approver.id(), author.name())) {
      return absl::PermissionDeniedError(absl::StrCat(
          who, " may not approve plan ", plan.id().empty() ? "" : plan.id() + " ", "of commit ",
          ShortSha(plan.target_revision().sha()), " that they authored: ", where,
          " requires an approver other than the commit's author (approvals.distinct_from_author)"));
    }
  }
  return absl::OkStatus();
}

std::string ApprovalCount(int recorded, int required) {
  return absl::StrCat(recorded, " of ", required, required == 1 ? " approval" : " approvals");
}

}  // namespace ferry::planner
