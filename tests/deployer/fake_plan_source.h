#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/concurrency/mutex.h"
#include "services/deployer/plan_source.h"

namespace ferry::deployer::testing {

// The planner in memory, for logic tests: acknowledges every plan, records
// acknowledgements, results, revision requests and refreshes, and fails
// results with a set error. Watch streams the plans given to Release whose
// position is after the cursor (positions compare as strings), then blocks
// until Cancel. Thread-safe.
class InMemoryPlanSource final : public PlanSource {
 public:
  absl::Status Watch(const std::string& cursor, const PlanCallback& on_plan) override;
  void Cancel() override;
  absl::StatusOr<v1::AcknowledgePlanResponse> Acknowledge(const v1::AcknowledgePlanRequest& request) override;
  absl::Status ReportResult(const v1::ReportPlanResultRequest& request) override;
  // Each result as ReportResult takes it; the call fails with FailResults'
  // error.
  absl::StatusOr<std::vector<absl::Status>> ReportResults(
      const std::vector<v1::ReportPlanResultRequest>& requests) override;
  absl::StatusOr<v1::PlanRevisionResponse> PlanRevision(const v1::PlanRevisionRequest& request) override;
  absl::Status Refresh(const v1::RefreshApplicationRequest& request) override;

  // Watch streams `plan` at `position` (give increasing positions).
  void Release(const std::string& position, const v1::Plan& plan);
  std::vector<v1::AcknowledgePlanRequest> acks();
  std::vector<v1::ReportPlanResultRequest> results();
  std::vector<v1::RefreshApplicationRequest> refreshes();
  std::vector<v1::PlanRevisionRequest> revisions();
  // ReportResult fails with `error` (OK: records again).
  void FailResults(absl::Status error);
  // The result of `plan_id` is answered with `answer`, not recorded (OK:
  // taken and recorded again).
  void AnswerResultOf(const std::string& plan_id, absl::Status answer);
  // Calls made: ReportResult, ReportResults.
  int single_report_calls();
  int batch_report_calls();
  // PlanRevision answers with this plan (UNAVAILABLE when unset).
  void set_revision_plan(const v1::Plan& plan);

 private:
  ferry::Mutex mu_;
  ferry::CondVar cv_;  // Signalled on Release and Cancel.
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::pair<std::string, v1::Plan>> released_ ABSL_GUARDED_BY(mu_);
  absl::Status result_error_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Status> answers_ ABSL_GUARDED_BY(mu_);
  int single_report_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int batch_report_calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<v1::AcknowledgePlanRequest> acks_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::ReportPlanResultRequest> results_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::RefreshApplicationRequest> refreshes_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::PlanRevisionRequest> revisions_ ABSL_GUARDED_BY(mu_);
  std::optional<v1::Plan> revision_plan_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::deployer::testing
