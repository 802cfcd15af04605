#include "services/planner/planner_service.h"

#include "absl/strings/str_cat.h"
#include "common/status/grpc_status.h"
#include "common/status/nul_free.h"

namespace ferry::planner {
namespace {

// The caller's identity for CRUD audit events. Ferry has no authentication
// yet; the "x-ferry-actor" metadata names the caller when given.
v1::Actor CallerOf(grpc::ServerContext* context) {
  v1::Actor actor;
  actor.set_kind(v1::ACTOR_KIND_USER);
  auto it = context->client_metadata().find("x-ferry-actor");
  if (it != context->client_metadata().end()) {
    actor.set_id(std::string(it->second.data(), it->second.size()));
  } else {
    actor.set_id("anonymous");
  }
  return actor;
}

template <typename T>
grpc::Status Reply(absl::StatusOr<T> result, T* out) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *out = std::move(*result);
  return grpc::Status::OK;
}

}  // namespace

grpc::Status PlannerService::CreateApplication(grpc::ServerContext* ctx, const v1::CreateApplicationRequest* req,
                                               v1::Application* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  return Reply(planner_->CreateApplication(req->application(), CallerOf(ctx)), out);
}

grpc::Status PlannerService::GetApplication(grpc::ServerContext*, const v1::GetApplicationRequest* req,
                                            v1::Application* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  return Reply(planner_->GetApplication(req->id()), out);
}

grpc::Status PlannerService::ListApplications(grpc::ServerContext*, const v1::ListApplicationsRequest* req,
                                              v1::ListApplicationsResponse* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  return Reply(planner_->ListApplications(*req), out);
}

grpc::Status PlannerService::UpdateApplication(grpc::ServerContext* ctx, const v1::UpdateApplicationRequest* req,
                                               v1::Application* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  return Reply(planner_->UpdateApplication(req->application(), req->update_mask(), CallerOf(ctx)), out);
}

grpc::Status PlannerService::DeleteApplication(grpc::ServerContext* ctx, const v1::DeleteApplicationRequest* req,
                                               v1::DeleteApplicationResponse*) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  return ToGrpcStatus(planner_->DeleteApplication(req->id(), CallerOf(ctx)));
}

grpc::Status PlannerService::CreateEnvironment(grpc::ServerContext* ctx, const v1::CreateEnvironmentRequest* req,
                                               v1::Environment* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  return Reply(planner_->CreateEnvironment(req->environment(), CallerOf(ctx)), out);
}

grpc::Status PlannerService::GetEnvironment(grpc::ServerContext*, const v1::GetEnvironmentRequest* req,
                                            v1::Environment* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  return Reply(planner_->GetEnvironment(req->id()), out);
}

grpc::Status PlannerService::ListEnvironments(grpc::ServerContext*, const v1::ListEnvironmentsRequest* req,
                                              v1::ListEnvironmentsResponse* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  return Reply(planner_->ListEnvironments(*req), out);
}

grpc::Status PlannerService::UpdateEnvironment(grpc::ServerContext* ctx, const v1::UpdateEnvironmentRequest* req,
                                               v1::Environment* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  return Reply(planner_->UpdateEnvironment(req->environment(), req->update_mask(), CallerOf(ctx)), out);
}

grpc::Status PlannerService::DeleteEnvironment(grpc::ServerContext* ctx, const v1::DeleteEnvironmentRequest* req,
                                               v1::DeleteEnvironmentResponse*) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  return ToGrpcStatus(planner_->DeleteEnvironment(req->id(), CallerOf(ctx)));
}

grpc::Status PlannerService::ApplyDeclarativeConfig(grpc::ServerContext* ctx, const v1::ApplyDeclarativeConfigRequest* req,
                                                    v1::ApplyDeclarativeConfigResponse* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  return Reply(planner_->ApplyDeclarativeConfig(*req, CallerOf(ctx)), out);
}

grpc::Status PlannerService::GetPlan(grpc::ServerContext*, const v1::GetPlanRequest* req, v1::Plan* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  return Reply(planner_->GetPlan(req->plan_id(), req->view() == v1::PLAN_VIEW_BASIC ? v1::PLAN_VIEW_BASIC
                                                                                      : v1::PLAN_VIEW_FULL),
               out);
}

grpc::Status PlannerService::ListPlans(grpc::ServerContext*, const v1::ListPlansRequest* req,
                                       v1::ListPlansResponse* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  return Reply(planner_->ListPlans(*req), out);
}

grpc::Status PlannerService::ApprovePlan(grpc::ServerContext*, const v1::ApprovePlanRequest* req, v1::Plan* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  return Reply(planner_->ApprovePlan(req->plan_id(), req->actor(), req->comment()), out);
}

grpc::Status PlannerService::RejectPlan(grpc::ServerContext*, const v1::RejectPlanRequest* req, v1::Plan* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  return Reply(planner_->RejectPlan(req->plan_id(), req->actor(), req->comment()), out);
}

grpc::Status PlannerService::PreviewPlan(grpc::ServerContext*, const v1::PreviewPlanRequest* req,
                                         v1::PreviewPlanResponse* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  absl::StatusOr<v1::Plan> plan = planner_->PreviewPlan(*req);
  if (!plan.ok()) return ToGrpcStatus(plan.status());
  *out->mutable_plan() = std::move(*plan);
  return grpc::Status::OK;
}

grpc::Status PlannerService::PlanRevision(grpc::ServerContext*, const v1::PlanRevisionRequest* req,
                                          v1::PlanRevisionResponse* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  return Reply(planner_->PlanRevision(*req), out);
}

grpc::Status PlannerService::WatchApprovedPlans(grpc::ServerContext* ctx, const v1::WatchApprovedPlansRequest* req,
                                                grpc::ServerWriter<v1::WatchApprovedPlansResponse>* writer) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  std::string cursor = req->cursor();
  while (!ctx->IsCancelled() && !notifier_->shut_down()) {
    uint64_t seen = notifier_->generation();
    absl::StatusOr<std::vector<ReleasedPlan>> batch = planner_->ReleasedAfter(cursor, 100);
    if (!batch.ok()) return ToGrpcStatus(batch.status());
    for (const ReleasedPlan& rp : *batch) {
      v1::WatchApprovedPlansResponse msg;
      msg.set_cursor(absl::StrCat(rp.release_seq));
      *msg.mutable_plan() = rp.plan;
      if (!writer->Write(msg)) return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
      cursor = msg.cursor();
    }
    if (batch->size() == 100) continue;
    // An empty cursor means "oldest unfinished release" and is re-evaluated
    // on every pass until the first plan is sent.
    notifier_->Wait(seen, safety_poll_);
  }
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, "planner is shutting down; reconnect with the last cursor");
}

grpc::Status PlannerService::AcknowledgePlan(grpc::ServerContext*, const v1::AcknowledgePlanRequest* req,
                                             v1::AcknowledgePlanResponse* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  return Reply(planner_->AcknowledgePlan(*req), out);
}

grpc::Status PlannerService::ReportPlanResult(grpc::ServerContext*, const v1::ReportPlanResultRequest* req,
                                              v1::ReportPlanResultResponse* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  absl::StatusOr<v1::Plan> plan = planner_->ReportPlanResult(*req);
  if (!plan.ok()) return ToGrpcStatus(plan.status());
  *out->mutable_plan() = std::move(*plan);
  return grpc::Status::OK;
}

grpc::Status PlannerService::RefreshApplication(grpc::ServerContext*, const v1::RefreshApplicationRequest* req,
                                                v1::RefreshApplicationResponse* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  absl::StatusOr<std::vector<v1::Plan>> plans = planner_->RefreshApplication(*req);
  if (!plans.ok()) return ToGrpcStatus(plans.status());
  for (auto& p : *plans) *out->add_plans() = std::move(p);
  return grpc::Status::OK;
}

}  // namespace ferry::planner
