#include "services/deployer/outcome_reporter.h"

#include "common/logging/logger.h"

namespace ferry::deployer {

OutcomeReporter::OutcomeReporter(OutcomeLedger* ledger, DeploymentRecords* records, PlanSource* plans,
                                 AppLocks* locks)
    : ledger_(ledger), records_(records), plans_(plans), locks_(locks) {}

void OutcomeReporter::ReportOutcomes() {
  if (plans_ == nullptr) return;
  // One reporter at a time: every finished deployment asks for a report, and
  // concurrent passes would report the same outcomes several times over.
  // A request made while a pass runs makes that pass run once more.
  {
    ferry::MutexLock l(&mu_);
    if (reporting_) {
      report_again_ = true;
      return;
    }
    reporting_ = true;
  }
  for (;;) {
    ReportOnce();
    ferry::MutexLock l(&mu_);
    if (!report_again_) {
      reporting_ = false;
      return;
    }
    report_again_ = false;
  }
}

void OutcomeReporter::ReportOnce() {
  absl::StatusOr<std::vector<v1::Deployment>> pending = ledger_->Unreported();
  if (!pending.ok()) return;
  // What the planner took is marked at the end of the pass, in one write
  // (issue #23: one per outcome before). A deployer that dies before it
  // reports them again; the planner answers a repeated report as the first.
  std::vector<std::string> reported;
  auto mark = [&] {
    if (reported.empty()) return;
    absl::Status s = ledger_->MarkReported(reported);
    if (!s.ok()) logging::Warn("cannot mark outcomes reported; they are reported again", {{"error", s.ToString()}});
  };
  for (const v1::Deployment& d : *pending) {
    if (locks_ != nullptr && !locks_->Owns(d.environment_id())) continue;  // Its owner reports it.
    v1::ReportPlanResultRequest req;
    req.set_plan_id(d.plan_id());
    req.set_deployment_id(d.id());
    req.set_message(d.message());
    switch (d.state()) {
      case v1::DEPLOYMENT_STATE_SUCCEEDED:
        req.set_state(v1::PLAN_STATE_SUCCEEDED);
        *req.mutable_live_revision() = d.revision();
        break;
      case v1::DEPLOYMENT_STATE_ROLLED_BACK: {
        req.set_state(v1::PLAN_STATE_ROLLED_BACK);
        absl::StatusOr<v1::Deployment> by = records_->Get(d.rolled_back_by_deployment_id(), false);
        if (by.ok()) *req.mutable_live_revision() = by->revision();
        break;
      }
      default:
        req.set_state(v1::PLAN_STATE_FAILED);
        *req.mutable_live_revision() = d.previous_revision();
        break;
    }
    absl::Status s = plans_->ReportResult(req);
    if (s.ok() || s.code() == absl::StatusCode::kNotFound || s.code() == absl::StatusCode::kFailedPrecondition) {
      reported.push_back(d.id());
    } else {
      logging::Warn("cannot report plan result; will retry", {{"plan", d.plan_id()}, {"error", s.ToString()}});
      mark();
      return;
    }
  }
  mark();
}

}  // namespace ferry::deployer
