#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ferry/v1/audit.pb.h"
#include "ferry/v1/planner.pb.h"
#include "ferry/v1/repo_watcher.pb.h"
#include "services/planner/check_source.h"
#include "services/planner/planner_events.h"

namespace ferry::planner {

// What an environment's required checks say about one commit.
struct ChecksVerdict {
  enum class Outcome {
    kNotRequired,  // the environment requires no check
    kPassed,       // every required check's latest result is SUCCESS
    kPending,      // none failed, some are PENDING or were never reported
    kFailed,       // the latest result of a required check is FAILURE
  };
  Outcome outcome = Outcome::kNotRequired;
  std::string sha;
  // One per required name, in the environment's order: the latest report,
  // or (never reported) a CommitCheck with only the name, state UNSPECIFIED.
  std::vector<v1::CommitCheck> required;
  std::vector<std::string> pending;  // names not passed yet (kPending)
  v1::CommitCheck failed;            // the first failed required check (kFailed)
  // kPending: the hold message naming the pending checks; kFailed: the
  // failure naming the check, its state, description and URL; kPassed: a
  // summary for the audit event.
  std::string message;
};

// Check results read during one pass, by "<repository>\n<sha>".
using CheckResultsCache = std::map<std::string, std::vector<v1::CommitCheck>>;

// Pure: `required` (names, as the CI system reports them; matched exactly)
// against the latest `reported` results of commit `sha`. A failure wins over
// pending ones (as a Git host's required status checks).
ChecksVerdict EvaluateRequiredChecks(const std::vector<std::string>& required,
                                     const std::vector<v1::CommitCheck>& reported, const std::string& sha);

// A check Ferry ran over a plan as the commit's check of that name (source
// "ferry", state SUCCESS or FAILURE, its description, report_time its finish).
v1::CommitCheck CommitCheckOf(const v1::CheckRun& run, const v1::CommitRef& target);

// "ci/test (pending, https://ci/1)": a check as messages show it.
std::string DescribeCheck(const v1::CommitCheck& check);

// One job: the required-checks gate of plans (Environment.required_checks,
// ferry.yaml `requiredChecks`): reads the commit's check results from the
// CheckSource and judges them, and builds the audit events of its
// decisions. Holds no state of its own; thread-safe.
class CheckGate {
 public:
  // `source` may be null (no repo-watcher to ask): required checks then
  // stay pending, with a message saying why.
  CheckGate(CheckSource* source, const Clock* clock) : source_(source), events_(clock) {}

  // The verdict of `env`'s required checks on `target` (kNotRequired when it
  // requires none, without asking the source). `results`, when given,
  // keeps what was read for the next call. UNAVAILABLE when the source
  // cannot be reached.
  // `own` are the checks Ferry ran over the plan itself (Plan.check_runs,
  // ferry.yaml `checks:`): a required check of that name is judged by the
  // run (source "ferry"), not by what CI reported; when runs cover every
  // required check the source is not asked.
  absl::StatusOr<ChecksVerdict> Evaluate(const v1::Environment& env, const v1::CommitRef& target,
                                         CheckResultsCache* results = nullptr,
                                         const google::protobuf::RepeatedPtrField<v1::CheckRun>* own = nullptr);

  // The audit events of one decision about `plan` (as it is now stored,
  // with its id) by `verdict`, given the hold it had before
  // (`before_reason`/`before_message`; HOLD_REASON_UNSPECIFIED and `created`
  // for a plan being made):
  //   held     PLAN_HELD_BY_CHECKS when the plan is now held by checks and
  //            was not, or the pending checks changed;
  //   released PLAN_CHECKS_PASSED when every check passed and the plan was
  //            held by checks (or is being made);
  //   failed   PLAN_FAILED_BY_CHECK when the plan FAILED by a check.
  std::vector<v1::Event> DecisionEvents(const v1::Plan& plan, const ChecksVerdict& verdict,
                                        v1::HoldReason before_reason, const std::string& before_message,
                                        bool created) const;

 private:
  CheckSource* source_;
  const PlannerEvents events_;
};

}  // namespace ferry::planner
