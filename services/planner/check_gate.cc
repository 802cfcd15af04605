#include "services/planner/check_gate.h"

#include <map>

#include <google/protobuf/struct.pb.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status/status_macros.h"

namespace ferry::planner {
namespace {

std::string StateWord(v1::CheckState state) {
  switch (state) {
    case v1::CHECK_STATE_PENDING: return "pending";
    case v1::CHECK_STATE_SUCCESS: return "success";
    case v1::CHECK_STATE_FAILURE: return "failure";
    default: return "not reported";
  }
}

google::protobuf::Value CheckValue(const v1::CommitCheck& check) {
  google::protobuf::Value v;
  auto& f = *v.mutable_struct_value()->mutable_fields();
  f["name"].set_string_value(check.name());
  f["state"].set_string_value(check.state() == v1::CHECK_STATE_UNSPECIFIED ? "NOT_REPORTED"
                                                                          : v1::CheckState_Name(check.state()));
  f["url"].set_string_value(check.url());
  if (!check.source().empty()) f["source"].set_string_value(check.source());
  return v;
}

}  // namespace

std::string DescribeCheck(const v1::CommitCheck& check) {
  std::string out = absl::StrCat(check.name(), " (", StateWord(check.state()));
  if (!check.description().empty()) absl::StrAppend(&out, ": ", check.description());
  if (!check.url().empty()) absl::StrAppend(&out, ", ", check.url());
  return out + ")";
}

ChecksVerdict EvaluateRequiredChecks(const std::vector<std::string>& required,
                                     const std::vector<v1::CommitCheck>& reported, const std::string& sha) {
  ChecksVerdict verdict;
  verdict.sha = sha;
  if (required.empty()) return verdict;
  std::map<std::string, const v1::CommitCheck*> by_name;
  for (const v1::CommitCheck& c : reported) {
    // The source gives the latest per name; should two come anyway, the
    // later report wins.
    auto it = by_name.find(c.name());
    if (it == by_name.end() || it->second->report_time().seconds() < c.report_time().seconds() ||
        (it->second->report_time().seconds() == c.report_time().seconds() &&
         it->second->report_time().nanos() <= c.report_time().nanos()))
      by_name[c.name()] = &c;
  }
  bool failed = false;
  std::vector<std::string> pending_described;
  for (const std::string& name : required) {
    auto it = by_name.find(name);
    v1::CommitCheck check;
    if (it != by_name.end()) {
      check = *it->second;
    } else {
      check.set_name(name);
      check.set_sha(sha);
    }
    verdict.required.push_back(check);
    if (check.state() == v1::CHECK_STATE_SUCCESS) continue;
    if (check.state() == v1::CHECK_STATE_FAILURE) {
      if (!failed) verdict.failed = check;
      failed = true;
      continue;
    }
    verdict.pending.push_back(name);
    pending_described.push_back(DescribeCheck(check));
  }
  if (failed) {
    verdict.outcome = ChecksVerdict::Outcome::kFailed;
    verdict.message = absl::StrCat("required check ", DescribeCheck(verdict.failed), " failed on ", ShortSha(sha),
                                   "; a later success of the check does not revive this plan: plan the commit "
                                   "again (RefreshApplication or PlanRevision) once it passes");
  } else if (!verdict.pending.empty()) {
    verdict.outcome = ChecksVerdict::Outcome::kPending;
    verdict.message = absl::StrCat("waiting for required checks on ", ShortSha(sha), ": ",
                                   absl::StrJoin(pending_described, ", "));
  } else {
    verdict.outcome = ChecksVerdict::Outcome::kPassed;
    verdict.message = absl::StrCat("required checks passed on ", ShortSha(sha), ": ", absl::StrJoin(required, ", "));
  }
  return verdict;
}

v1::CommitCheck CommitCheckOf(const v1::CheckRun& run, const v1::CommitRef& target) {
  v1::CommitCheck check;
  check.set_repository_id(target.repository_id());
  check.set_sha(target.sha());
  check.set_name(run.name());
  check.set_state(run.result() == v1::CHECK_RUN_RESULT_PASSED ? v1::CHECK_STATE_SUCCESS : v1::CHECK_STATE_FAILURE);
  check.set_description(run.description());
  check.set_source("ferry");
  check.mutable_reported_by()->set_id("ferry");
  *check.mutable_report_time() = run.finish_time();
  return check;
}

absl::StatusOr<ChecksVerdict> CheckGate::Evaluate(const v1::Environment& env, const v1::CommitRef& target,
                                                  CheckResultsCache* results,
                                                  const google::protobuf::RepeatedPtrField<v1::CheckRun>* own) {
  const std::vector<std::string> required(env.required_checks().begin(), env.required_checks().end());
  if (required.empty()) return EvaluateRequiredChecks({}, {}, target.sha());
  // The plan's own runs first: they replace what CI reported under the same name.
  std::map<std::string, v1::CommitCheck> ran;
  if (own != nullptr)
    for (const v1::CheckRun& run : *own) ran[run.name()] = CommitCheckOf(run, target);
  auto merged = [&](const std::vector<v1::CommitCheck>& reported) {
    std::vector<v1::CommitCheck> out;
    for (const v1::CommitCheck& c : reported)
      if (!ran.count(c.name())) out.push_back(c);
    for (const auto& [name, c] : ran) out.push_back(c);
    return out;
  };
  bool all_own = true;
  for (const std::string& name : required) all_own = all_own && ran.count(name) > 0;
  if (all_own) return EvaluateRequiredChecks(required, merged({}), target.sha());
  if (source_ == nullptr) {
    ChecksVerdict verdict = EvaluateRequiredChecks(required, merged({}), target.sha());
    if (verdict.outcome == ChecksVerdict::Outcome::kPending) verdict.message += " (the planner has no check source to ask)";
    return verdict;
  }
  const std::string key = absl::StrCat(target.repository_id(), "\n", target.sha());
  if (results != nullptr) {
    auto it = results->find(key);
    if (it != results->end()) return EvaluateRequiredChecks(required, merged(it->second), target.sha());
  }
  ASSIGN_OR_RETURN(std::vector<v1::CommitCheck> reported, source_->ListChecks(target.repository_id(), target.sha()));
  if (results != nullptr) (*results)[key] = reported;
  return EvaluateRequiredChecks(required, merged(reported), target.sha());
}

std::vector<v1::Event> CheckGate::DecisionEvents(const v1::Plan& plan, const ChecksVerdict& verdict,
                                                 v1::HoldReason before_reason, const std::string& before_message,
                                                 bool created) const {
  if (verdict.outcome == ChecksVerdict::Outcome::kNotRequired) return {};
  auto make = [&](v1::AuditAction action, const std::string& message, const std::string& key) {
    v1::Event e = events_.Make(action, SystemActor(), message, absl::StrCat(key, "/", plan.id()));
    e.mutable_subject()->set_plan_id(plan.id());
    e.mutable_subject()->set_application_id(plan.application_id());
    e.mutable_subject()->set_environment_id(plan.environment_id());
    e.mutable_subject()->set_repository_id(plan.target_revision().repository_id());
    e.mutable_subject()->set_commit_sha(plan.target_revision().sha());
    auto& fields = *e.mutable_details()->mutable_fields();
    auto* list = fields["checks"].mutable_list_value();
    for (const v1::CommitCheck& c : verdict.required) *list->add_values() = CheckValue(c);
    return e;
  };
  switch (verdict.outcome) {
    case ChecksVerdict::Outcome::kFailed: {
      if (plan.state() != v1::PLAN_STATE_FAILED) return {};
      v1::Event e = make(v1::AUDIT_ACTION_PLAN_FAILED_BY_CHECK,
                         absl::StrCat("plan ", plan.id(), " failed: ", verdict.message), "plan-failed-by-check");
      auto& fields = *e.mutable_details()->mutable_fields();
      fields["check"].set_string_value(verdict.failed.name());
      fields["state"].set_string_value(v1::CheckState_Name(verdict.failed.state()));
      fields["url"].set_string_value(verdict.failed.url());
      return {e};
    }
    case ChecksVerdict::Outcome::kPending: {
      if (plan.hold_reason() != v1::HOLD_REASON_CHECKS_PENDING) return {};
      if (!created && before_reason == v1::HOLD_REASON_CHECKS_PENDING && before_message == plan.hold_message()) return {};
      v1::Event e = make(v1::AUDIT_ACTION_PLAN_HELD_BY_CHECKS,
                         absl::StrCat("plan ", plan.id(), " held: ", plan.hold_message()), "plan-held-by-checks");
      auto* pending = (*e.mutable_details()->mutable_fields())["pending"].mutable_list_value();
      for (const std::string& name : verdict.pending) pending->add_values()->set_string_value(name);
      return {e};
    }
    case ChecksVerdict::Outcome::kPassed: {
      if (!created && before_reason != v1::HOLD_REASON_CHECKS_PENDING) return {};
      std::string next = plan.hold_reason() == v1::HOLD_REASON_UNSPECIFIED
                             ? (plan.state() == v1::PLAN_STATE_APPROVED ? "released" : "")
                             : absl::StrCat("still held: ", plan.hold_message());
      std::vector<std::string> described;
      for (const v1::CommitCheck& c : verdict.required) described.push_back(DescribeCheck(c));
      v1::Event e = make(v1::AUDIT_ACTION_PLAN_CHECKS_PASSED,
                         absl::StrCat("plan ", plan.id(), ": required checks passed on ", ShortSha(verdict.sha), ": ",
                                      absl::StrJoin(described, ", "), next.empty() ? "" : "; " + next),
                         "plan-checks-passed");
      return {e};
    }
    case ChecksVerdict::Outcome::kNotRequired:
      break;
  }
  return {};
}

}  // namespace ferry::planner
