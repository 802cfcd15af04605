#include "tests/deployer/fake_plan_source.h"

namespace ferry::deployer::testing {

absl::Status InMemoryPlanSource::Watch(const std::string& cursor, const PlanCallback& on_plan) {
  std::string at = cursor;
  ferry::MutexLock l(&mu_);
  while (!cancelled_) {
    std::optional<std::pair<std::string, v1::Plan>> next;
    for (const auto& r : released_) {
      if (r.first > at) {
        next = r;
        break;
      }
    }
    if (!next) {
      cv_.WaitWithTimeout(&mu_, absl::Milliseconds(10));
      continue;
    }
    mu_.Unlock();
    bool more = on_plan(next->first, next->second);
    mu_.Lock();
    if (!more) return absl::AbortedError("plan not taken");
    at = next->first;
  }
  return absl::CancelledError("cancelled");
}

void InMemoryPlanSource::Release(const std::string& position, const v1::Plan& plan) {
  ferry::MutexLock l(&mu_);
  released_.emplace_back(position, plan);
  cv_.SignalAll();
}

void InMemoryPlanSource::Cancel() {
  ferry::MutexLock l(&mu_);
  cancelled_ = true;
  cv_.SignalAll();
}

absl::StatusOr<v1::AcknowledgePlanResponse> InMemoryPlanSource::Acknowledge(const v1::AcknowledgePlanRequest& r) {
  ferry::MutexLock l(&mu_);
  acks_.push_back(r);
  v1::AcknowledgePlanResponse resp;
  resp.set_proceed(true);
  return resp;
}

absl::Status InMemoryPlanSource::ReportResult(const v1::ReportPlanResultRequest& r) {
  ferry::MutexLock l(&mu_);
  ++single_report_calls_;
  if (!result_error_.ok()) return result_error_;
  if (auto it = answers_.find(r.plan_id()); it != answers_.end()) return it->second;
  results_.push_back(r);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<absl::Status>> InMemoryPlanSource::ReportResults(
    const std::vector<v1::ReportPlanResultRequest>& requests) {
  ferry::MutexLock l(&mu_);
  ++batch_report_calls_;
  if (!result_error_.ok()) return result_error_;
  std::vector<absl::Status> out;
  for (const v1::ReportPlanResultRequest& r : requests) {
    if (auto it = answers_.find(r.plan_id()); it != answers_.end()) {
      out.push_back(it->second);
      continue;
    }
    results_.push_back(r);
    out.push_back(absl::OkStatus());
  }
  return out;
}

void InMemoryPlanSource::AnswerResultOf(const std::string& plan_id, absl::Status answer) {
  ferry::MutexLock l(&mu_);
  if (answer.ok()) answers_.erase(plan_id);
  else answers_[plan_id] = std::move(answer);
}

int InMemoryPlanSource::single_report_calls() {
  ferry::MutexLock l(&mu_);
  return single_report_calls_;
}

int InMemoryPlanSource::batch_report_calls() {
  ferry::MutexLock l(&mu_);
  return batch_report_calls_;
}

absl::StatusOr<v1::PlanRevisionResponse> InMemoryPlanSource::PlanRevision(const v1::PlanRevisionRequest& r) {
  ferry::MutexLock l(&mu_);
  revisions_.push_back(r);
  if (!revision_plan_) return absl::UnavailableError("planner down");
  v1::PlanRevisionResponse resp;
  *resp.mutable_plan() = *revision_plan_;
  return resp;
}

absl::Status InMemoryPlanSource::Refresh(const v1::RefreshApplicationRequest& r) {
  ferry::MutexLock l(&mu_);
  refreshes_.push_back(r);
  return absl::OkStatus();
}

std::vector<v1::AcknowledgePlanRequest> InMemoryPlanSource::acks() {
  ferry::MutexLock l(&mu_);
  return acks_;
}

std::vector<v1::ReportPlanResultRequest> InMemoryPlanSource::results() {
  ferry::MutexLock l(&mu_);
  return results_;
}

std::vector<v1::RefreshApplicationRequest> InMemoryPlanSource::refreshes() {
  ferry::MutexLock l(&mu_);
  return refreshes_;
}

std::vector<v1::PlanRevisionRequest> InMemoryPlanSource::revisions() {
  ferry::MutexLock l(&mu_);
  return revisions_;
}

void InMemoryPlanSource::FailResults(absl::Status error) {
  ferry::MutexLock l(&mu_);
  result_error_ = std::move(error);
}

void InMemoryPlanSource::set_revision_plan(const v1::Plan& plan) {
  ferry::MutexLock l(&mu_);
  revision_plan_ = plan;
}

}  // namespace ferry::deployer::testing
