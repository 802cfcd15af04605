#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ferry/v1/planner.pb.h"

namespace ferry::deployer {

// The planner as the deployer sees it: where released plans come from and
// where outcomes go. GrpcPlanSource talks to ferry-planner; tests use a fake.
// Implementations are thread-safe. UNAVAILABLE means the planner could not
// be reached; retry later.
class PlanSource {
 public:
  // Returns false to end the stream (the plan was not taken; the caller
  // reconnects from its last saved cursor).
  using PlanCallback = std::function<bool(const std::string& cursor, const v1::Plan& plan)>;
  virtual ~PlanSource() = default;

  // Streams plans released after `cursor` to `on_plan`, in order, each whole
  // (manifests, json_patch and unified_diff filled in), until the
  // stream ends, fails, `on_plan` returns false (then ABORTED), or Cancel()
  // is called (then CANCELLED).
  virtual absl::Status Watch(const std::string& cursor, const PlanCallback& on_plan) = 0;
  // Ends a Watch in progress (and makes later ones return at once).
  virtual void Cancel() = 0;
  virtual absl::StatusOr<v1::AcknowledgePlanResponse> Acknowledge(const v1::AcknowledgePlanRequest& request) = 0;
  virtual absl::Status ReportResult(const v1::ReportPlanResultRequest& request) = 0;
  // Several outcomes in one call (a reporting pass): one status per request,
  // in order, each as ReportResult would answer it alone; an error when the
  // call itself failed (none, or only some, were taken: a repeated report is
  // answered as the first, so all are reported again).
  virtual absl::StatusOr<std::vector<absl::Status>> ReportResults(
      const std::vector<v1::ReportPlanResultRequest>& requests) = 0;
  virtual absl::StatusOr<v1::PlanRevisionResponse> PlanRevision(const v1::PlanRevisionRequest& request) = 0;
  virtual absl::Status Refresh(const v1::RefreshApplicationRequest& request) = 0;
};

}  // namespace ferry::deployer
