#include "services/deployer/grpc_plan_source.h"

#include "common/server/stream_limiter.h"
#include "common/status/grpc_status.h"

namespace ferry::deployer {
namespace {

void SetDeadline(grpc::ClientContext& ctx, absl::Duration timeout) {
  ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout));
}

}  // namespace

GrpcPlanSource::GrpcPlanSource(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout)
    : stub_(v1::Planner::NewStub(channel)), timeout_(timeout) {}

absl::Status GrpcPlanSource::Watch(const std::string& cursor, const PlanCallback& on_plan) {
  grpc::ClientContext ctx;
  {
    ferry::MutexLock l(&mu_);
    if (cancelled_) return absl::CancelledError("plan watch cancelled");
    watching_ = &ctx;
  }
  ctx.AddMetadata(server::kServiceCallerMetadata, "deployer");  // may use the planner's reserved stream slots
  v1::WatchApprovedPlansRequest req;
  req.set_cursor(cursor);
  std::unique_ptr<grpc::ClientReader<v1::WatchApprovedPlansResponse>> reader = stub_->WatchApprovedPlans(&ctx, req);
  v1::WatchApprovedPlansResponse resp;
  bool stopped_early = false;
  while (reader->Read(&resp)) {
    if (!on_plan(resp.cursor(), resp.plan())) {
      stopped_early = true;
      ctx.TryCancel();
      break;
    }
  }
  grpc::Status status = reader->Finish();
  ferry::MutexLock l(&mu_);
  watching_ = nullptr;
  if (cancelled_) return absl::CancelledError("plan watch cancelled");
  if (stopped_early) return absl::AbortedError("a plan was not taken; reconnecting from the saved cursor");
  return FromGrpcStatus(status);
}

void GrpcPlanSource::Cancel() {
  ferry::MutexLock l(&mu_);
  cancelled_ = true;
  if (watching_ != nullptr) watching_->TryCancel();
}

absl::StatusOr<v1::AcknowledgePlanResponse> GrpcPlanSource::Acknowledge(const v1::AcknowledgePlanRequest& request) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, timeout_);
  v1::AcknowledgePlanResponse resp;
  grpc::Status s = stub_->AcknowledgePlan(&ctx, request, &resp);
  if (!s.ok()) return FromGrpcStatus(s);
  return resp;
}

absl::Status GrpcPlanSource::ReportResult(const v1::ReportPlanResultRequest& request) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, timeout_);
  v1::ReportPlanResultResponse resp;
  return FromGrpcStatus(stub_->ReportPlanResult(&ctx, request, &resp));
}

absl::StatusOr<v1::PlanRevisionResponse> GrpcPlanSource::PlanRevision(const v1::PlanRevisionRequest& request) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, timeout_);
  v1::PlanRevisionResponse resp;
  grpc::Status s = stub_->PlanRevision(&ctx, request, &resp);
  if (!s.ok()) return FromGrpcStatus(s);
  return resp;
}

absl::Status GrpcPlanSource::Refresh(const v1::RefreshApplicationRequest& request) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, timeout_);
  v1::RefreshApplicationResponse resp;
  return FromGrpcStatus(stub_->RefreshApplication(&ctx, request, &resp));
}

}  // namespace ferry::deployer
