#pragma once

#include <functional>
#include <string>

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
  virtual absl::StatusOr<v1::PlanRevisionResponse> PlanRevision(const v1::PlanRevisionRequest& request) = 0;
  virtual absl::Status Refresh(const v1::RefreshApplicationRequest& request) = 0;
};

}  // namespace ferry::deployer
