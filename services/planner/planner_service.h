#pragma once

#include <memory>

#include "absl/base/thread_annotations.h"
#include "common/concurrency/change_signal.h"
#include "common/concurrency/mutex.h"
#include "common/server/stream_limiter.h"
#include "ferry/v1/planner.grpc.pb.h"
#include "services/planner/plan_view.h"
#include "services/planner/planner.h"
#include "services/planner/preview/pull_request_previews.h"

namespace ferry::planner {

// gRPC handlers of ferry.v1.Planner: translate, delegate to Planner, map the
// status. WatchApprovedPlans streams released plans after the cursor, then
// waits on the plans' ChangeSignal (with a 2 s safety poll) until the client leaves
// or the signal is cancelled. Thread-safe.
//
// WatchApprovedPlans waits on the notifier between passes, re-checking the
// store every `safety_poll` even without a notification. It sends plans
// without their details (manifests, json_patch, unified_diff); those are
// paged by ListPlanManifests within `limits.page_bytes`. GetPlan, ListPlans,
// PreviewPlan and PlanRevision leave the details out of a plan over
// `limits.max_plan_message_bytes` and say so (Plan.details_omitted).
// ListPlanManifests keeps the plan being paged (one at a time) between its
// pages, so a plan is read from the store once per walk, not once per page;
// it is dropped after the last page or when another plan is paged.
class PlannerService final : public v1::Planner::Service {
 public:
  // Each WatchApprovedPlans stream holds a slot of `plan_streams` (null:
  // unlimited) while open.
  PlannerService(Planner* planner, concurrency::ChangeSignal* notifier, absl::Duration safety_poll = absl::Seconds(2),
                 server::StreamLimiter* plan_streams = nullptr, PlanMessageLimits limits = {},
                 PullRequestPreviews* previews = nullptr)
      : planner_(planner),
        notifier_(notifier),
        safety_poll_(safety_poll),
        plan_streams_(plan_streams),
        limits_(limits),
        previews_(previews) {}

  grpc::Status CreateApplication(grpc::ServerContext*, const v1::CreateApplicationRequest*, v1::Application*) override;
  grpc::Status GetApplication(grpc::ServerContext*, const v1::GetApplicationRequest*, v1::Application*) override;
  grpc::Status ListApplications(grpc::ServerContext*, const v1::ListApplicationsRequest*,
                                v1::ListApplicationsResponse*) override;
  grpc::Status UpdateApplication(grpc::ServerContext*, const v1::UpdateApplicationRequest*, v1::Application*) override;
  grpc::Status DeleteApplication(grpc::ServerContext*, const v1::DeleteApplicationRequest*,
                                 v1::DeleteApplicationResponse*) override;
  grpc::Status CreateEnvironment(grpc::ServerContext*, const v1::CreateEnvironmentRequest*, v1::Environment*) override;
  grpc::Status GetEnvironment(grpc::ServerContext*, const v1::GetEnvironmentRequest*, v1::Environment*) override;
  grpc::Status ListEnvironments(grpc::ServerContext*, const v1::ListEnvironmentsRequest*,
                                v1::ListEnvironmentsResponse*) override;
  grpc::Status UpdateEnvironment(grpc::ServerContext*, const v1::UpdateEnvironmentRequest*, v1::Environment*) override;
  grpc::Status DeleteEnvironment(grpc::ServerContext*, const v1::DeleteEnvironmentRequest*,
                                 v1::DeleteEnvironmentResponse*) override;
  grpc::Status ApplyDeclarativeConfig(grpc::ServerContext*, const v1::ApplyDeclarativeConfigRequest*,
                                      v1::ApplyDeclarativeConfigResponse*) override;
  grpc::Status GetPlan(grpc::ServerContext*, const v1::GetPlanRequest*, v1::Plan*) override;
  grpc::Status ListPlans(grpc::ServerContext*, const v1::ListPlansRequest*, v1::ListPlansResponse*) override;
  grpc::Status ListPlanManifests(grpc::ServerContext*, const v1::ListPlanManifestsRequest*,
                                 v1::ListPlanManifestsResponse*) override;
  grpc::Status ApprovePlan(grpc::ServerContext*, const v1::ApprovePlanRequest*, v1::Plan*) override;
  grpc::Status RejectPlan(grpc::ServerContext*, const v1::RejectPlanRequest*, v1::Plan*) override;
  grpc::Status PreviewPlan(grpc::ServerContext*, const v1::PreviewPlanRequest*, v1::PreviewPlanResponse*) override;
  grpc::Status PlanRevision(grpc::ServerContext*, const v1::PlanRevisionRequest*, v1::PlanRevisionResponse*) override;
  grpc::Status WatchApprovedPlans(grpc::ServerContext*, const v1::WatchApprovedPlansRequest*,
                                  grpc::ServerWriter<v1::WatchApprovedPlansResponse>*) override;
  grpc::Status AcknowledgePlan(grpc::ServerContext*, const v1::AcknowledgePlanRequest*,
                               v1::AcknowledgePlanResponse*) override;
  grpc::Status ReportPlanResult(grpc::ServerContext*, const v1::ReportPlanResultRequest*,
                                v1::ReportPlanResultResponse*) override;
  grpc::Status ReportPlanResults(grpc::ServerContext*, const v1::ReportPlanResultsRequest*,
                                 v1::ReportPlanResultsResponse*) override;
  grpc::Status RefreshApplication(grpc::ServerContext*, const v1::RefreshApplicationRequest*,
                                  v1::RefreshApplicationResponse*) override;
  // Pull-request previews (PullRequestPreviews; UNIMPLEMENTED when not wired).
  grpc::Status ListPullRequestPreviews(grpc::ServerContext*, const v1::ListPullRequestPreviewsRequest*,
                                       v1::ListPullRequestPreviewsResponse*) override;
  grpc::Status GetPullRequestPreview(grpc::ServerContext*, const v1::GetPullRequestPreviewRequest*,
                                     v1::PullRequestPreview*) override;

 private:
  Planner* planner_;
  concurrency::ChangeSignal* notifier_;
  const absl::Duration safety_poll_;
  server::StreamLimiter* const plan_streams_;
  const PlanMessageLimits limits_;
  PullRequestPreviews* const previews_;
  ferry::Mutex paging_mu_;
  std::shared_ptr<const v1::Plan> paging_ ABSL_GUARDED_BY(paging_mu_);  // the plan being paged
};

}  // namespace ferry::planner
