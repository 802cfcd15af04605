#include "services/deployer/outcome_reporter.h"

#include <algorithm>
#include <string>
#include <vector>

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
  std::vector<v1::ReportPlanResultRequest> requests;
  std::vector<std::string> deployment_ids;
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
    requests.push_back(std::move(req));
    deployment_ids.push_back(d.id());
  }
  // The pass's outcomes go in one call per kBatch (issue #23: one call per
  // outcome, each re-evaluating the planner's held plans, at 10,000
  // applications). What the planner took is marked at the end of the pass,
  // in one write; a deployer that dies before that reports them again, and
  // the planner answers a repeated report as the first.
  std::vector<std::string> reported;
  for (size_t first = 0; first < requests.size(); first += kBatch) {
    const size_t end = std::min(requests.size(), first + kBatch);
    std::vector<v1::ReportPlanResultRequest> batch(requests.begin() + first, requests.begin() + end);
    absl::StatusOr<std::vector<absl::Status>> taken = plans_->ReportResults(batch);
    if (!taken.ok()) {
      logging::Warn("cannot report plan results; will retry",
                    {{"results", static_cast<int64_t>(batch.size())}, {"error", taken.status().ToString()}});
      break;
    }
    bool retry = false;
    for (size_t i = 0; i < taken->size() && i < batch.size(); ++i) {
      const absl::Status& s = (*taken)[i];
      // Unknown to the planner, or no longer taking this result (another
      // deployment executes the plan now): nothing more to tell it.
      if (s.ok() || absl::IsNotFound(s) || absl::IsFailedPrecondition(s)) {
        reported.push_back(deployment_ids[first + i]);
      } else {
        logging::Warn("cannot report plan result; will retry", {{"plan", batch[i].plan_id()}, {"error", s.ToString()}});
        retry = true;
      }
    }
    if (retry) break;
  }
  if (reported.empty()) return;
  absl::Status s = ledger_->MarkReported(reported);
  if (!s.ok()) logging::Warn("cannot mark outcomes reported; they are reported again", {{"error", s.ToString()}});
}

}  // namespace ferry::deployer
