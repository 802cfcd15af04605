#pragma once

#include <atomic>
#include <memory>
#include <vector>
#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "common/concurrency/mutex.h"
#include "ferry/v1/planner.grpc.pb.h"
#include "services/deployer/plan_source.h"

namespace ferry::deployer {

// PlanSource over ferry.v1.Planner. Released plans arrive without manifests
// and diffs; Watch pages them in with ListPlanManifests and hands on the
// full plan. Thread-safe.
class GrpcPlanSource final : public PlanSource {
 public:
  explicit GrpcPlanSource(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout = absl::Seconds(30));

  absl::Status Watch(const std::string& cursor, const PlanCallback& on_plan) override;
  void Cancel() override;
  absl::StatusOr<v1::AcknowledgePlanResponse> Acknowledge(const v1::AcknowledgePlanRequest& request) override;
  absl::Status ReportResult(const v1::ReportPlanResultRequest& request) override;
  // ReportPlanResults; one ReportPlanResult after another with a planner
  // that lacks it (UNIMPLEMENTED: an older planner), stopping at the first
  // that fails otherwise than NOT_FOUND or FAILED_PRECONDITION.
  absl::StatusOr<std::vector<absl::Status>> ReportResults(
      const std::vector<v1::ReportPlanResultRequest>& requests) override;
  absl::StatusOr<v1::PlanRevisionResponse> PlanRevision(const v1::PlanRevisionRequest& request) override;
  absl::Status Refresh(const v1::RefreshApplicationRequest& request) override;

 private:
  // Fills in the manifests, json_patch and unified_diff of a plan sent
  // without them.
  absl::Status FetchDetails(v1::Plan& plan);

  std::unique_ptr<v1::Planner::Stub> stub_;
  const absl::Duration timeout_;
  ferry::Mutex mu_;
  grpc::ClientContext* watching_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  // The planner answered ReportPlanResults with UNIMPLEMENTED.
  std::atomic<bool> no_batch_reports_{false};
};

}  // namespace ferry::deployer
