#include "services/planner/planner_service.h"

#include "absl/strings/str_cat.h"
#include "common/auth/request_scope.h"
#include "common/server/handler.h"
#include "common/status/grpc_status.h"
#include "common/status/status_macros.h"

namespace ferry::planner {
namespace {

// Kubernetes Secret values in plan manifests are for Ferry's services (the
// deployer applies them), never for people: a user's token or OIDC login sees
// digests. With access control off (--insecure-no-auth, development only)
// callers are not told apart and see the values.
bool SeesSecretValues(const auth::Principal& caller) {
  return caller.kind == auth::PrincipalKind::kService || caller.method.empty();
}


// Released plans read from the store a pass: at most this many, and none
// past the one that brings their bodies to kReleasedBatchBytes. The store
// returns whole plans, and the body of a 20,000-object plan is 15 MB (twice
// that as the query's text): such a plan is read alone. One plan a pass was
// one statement per plan (issue #23).
constexpr int kReleasedBatch = 64;
constexpr int64_t kReleasedBatchBytes = 1 << 20;
// A released plan whose whole encoding is at most this size is streamed
// whole to a caller that may see its manifests (a service): the deployer
// then fetches nothing (issue #23: one ListPlanManifests call per plan).
// Larger plans go without manifests and diffs, fetched page by page.
constexpr size_t kWholePlanBytes = 256 * 1024;

}  // namespace

grpc::Status PlannerService::CreateApplication(grpc::ServerContext* ctx, const v1::CreateApplicationRequest* req,
                                               v1::Application* out) {
  return server::Handle(ctx, *req, out, [&](const auth::Principal& caller) {
    return planner_->CreateApplication(req->application(), auth::ActorOf(caller));
  });
}

grpc::Status PlannerService::GetApplication(grpc::ServerContext* ctx, const v1::GetApplicationRequest* req,
                                            v1::Application* out) {
  return server::Handle(ctx, *req, out, [&] { return planner_->GetApplication(req->id()); });
}

grpc::Status PlannerService::ListApplications(grpc::ServerContext* ctx, const v1::ListApplicationsRequest* req,
                                              v1::ListApplicationsResponse* out) {
  return server::Handle(ctx, *req, out, [&] { return planner_->ListApplications(*req); });
}

grpc::Status PlannerService::UpdateApplication(grpc::ServerContext* ctx, const v1::UpdateApplicationRequest* req,
                                               v1::Application* out) {
  return server::Handle(ctx, *req, out, [&](const auth::Principal& caller) {
    return planner_->UpdateApplication(req->application(), req->update_mask(), auth::ActorOf(caller));
  });
}

grpc::Status PlannerService::DeleteApplication(grpc::ServerContext* ctx, const v1::DeleteApplicationRequest* req,
                                               v1::DeleteApplicationResponse*) {
  return server::Handle(ctx, *req, [&](const auth::Principal& caller) { return planner_->DeleteApplication(req->id(), auth::ActorOf(caller)); });
}

grpc::Status PlannerService::CreateEnvironment(grpc::ServerContext* ctx, const v1::CreateEnvironmentRequest* req,
                                               v1::Environment* out) {
  return server::Handle(ctx, *req, out, [&](const auth::Principal& caller) {
    return planner_->CreateEnvironment(req->environment(), auth::ActorOf(caller));
  });
}

grpc::Status PlannerService::GetEnvironment(grpc::ServerContext* ctx, const v1::GetEnvironmentRequest* req,
                                            v1::Environment* out) {
  return server::Handle(ctx, *req, out, [&] { return planner_->GetEnvironment(req->id()); });
}

grpc::Status PlannerService::ListEnvironments(grpc::ServerContext* ctx, const v1::ListEnvironmentsRequest* req,
                                              v1::ListEnvironmentsResponse* out) {
  return server::Handle(ctx, *req, out, [&] { return planner_->ListEnvironments(*req); });
}

grpc::Status PlannerService::UpdateEnvironment(grpc::ServerContext* ctx, const v1::UpdateEnvironmentRequest* req,
                                               v1::Environment* out) {
  return server::Handle(ctx, *req, out, [&](const auth::Principal& caller) {
    return planner_->UpdateEnvironment(req->environment(), req->update_mask(), auth::ActorOf(caller));
  });
}

grpc::Status PlannerService::DeleteEnvironment(grpc::ServerContext* ctx, const v1::DeleteEnvironmentRequest* req,
                                               v1::DeleteEnvironmentResponse*) {
  return server::Handle(ctx, *req, [&](const auth::Principal& caller) { return planner_->DeleteEnvironment(req->id(), auth::ActorOf(caller)); });
}

grpc::Status PlannerService::ApplyDeclarativeConfig(grpc::ServerContext* ctx, const v1::ApplyDeclarativeConfigRequest* req,
                                                    v1::ApplyDeclarativeConfigResponse* out) {
  return server::Handle(ctx, *req, out, [&](const auth::Principal& caller) { return planner_->ApplyDeclarativeConfig(*req, auth::ActorOf(caller)); });
}

grpc::Status PlannerService::GetPlan(grpc::ServerContext* ctx, const v1::GetPlanRequest* req, v1::Plan* out) {
  return server::Handle(ctx, *req, out, [&](const auth::Principal& caller) -> absl::StatusOr<v1::Plan> {
    ASSIGN_OR_RETURN(v1::Plan plan, planner_->GetPlan(req->plan_id(), req->view() == v1::PLAN_VIEW_BASIC
                                                                          ? v1::PLAN_VIEW_BASIC
                                                                          : v1::PLAN_VIEW_FULL));
    if (!SeesSecretValues(caller)) MaskSecretValues(*plan.mutable_manifests());
    if (req->view() != v1::PLAN_VIEW_BASIC) FitInMessage(plan, limits_.max_plan_message_bytes);
    return plan;
  });
}

grpc::Status PlannerService::ListPlans(grpc::ServerContext* ctx, const v1::ListPlansRequest* req,
                                       v1::ListPlansResponse* out) {
  return server::Handle(ctx, *req, out, [&](const auth::Principal& caller) -> absl::StatusOr<v1::ListPlansResponse> {
    ASSIGN_OR_RETURN(v1::ListPlansResponse page, planner_->ListPlans(*req));
    if (req->view() != v1::PLAN_VIEW_FULL) return page;
    if (!SeesSecretValues(caller)) {
      for (v1::Plan& p : *page.mutable_plans()) MaskSecretValues(*p.mutable_manifests());
    }
    // FULL plans share one message: each keeps its details while the whole
    // stays under the limit.
    size_t total = 0;
    for (v1::Plan& p : *page.mutable_plans()) {
      size_t budget = limits_.max_plan_message_bytes > total ? limits_.max_plan_message_bytes - total : 0;
      FitInMessage(p, budget);
      total += p.ByteSizeLong();
    }
    return page;
  });
}

grpc::Status PlannerService::ListPlanManifests(grpc::ServerContext* ctx, const v1::ListPlanManifestsRequest* req,
                                               v1::ListPlanManifestsResponse* out) {
  return server::Handle(ctx, *req, out, [&](const auth::Principal& caller) -> absl::StatusOr<v1::ListPlanManifestsResponse> {
    if (req->plan_id().empty()) return absl::InvalidArgumentError("plan_id: is required");
    std::shared_ptr<const v1::Plan> plan;
    {
      ferry::MutexLock l(&paging_mu_);
      // A walk starts with an empty token and reads the plan afresh.
      if (paging_ != nullptr && paging_->id() == req->plan_id() && !req->page_token().empty()) plan = paging_;
    }
    if (plan == nullptr) {
      ASSIGN_OR_RETURN(v1::Plan fresh, planner_->GetPlan(req->plan_id(), v1::PLAN_VIEW_FULL));
      plan = std::make_shared<const v1::Plan>(std::move(fresh));
      ferry::MutexLock l(&paging_mu_);
      paging_ = plan;
    }
    ASSIGN_OR_RETURN(v1::ListPlanManifestsResponse page,
                     ManifestPage(*plan, req->page_size(), req->page_token(), limits_.page_bytes));
    if (!SeesSecretValues(caller)) MaskSecretValues(*page.mutable_manifests());
    if (page.next_page_token().empty()) {
      ferry::MutexLock l(&paging_mu_);
      if (paging_ == plan) paging_.reset();
    }
    return page;
  });
}

grpc::Status PlannerService::ApprovePlan(grpc::ServerContext* ctx, const v1::ApprovePlanRequest* req, v1::Plan* out) {
  return server::Handle(ctx, *req, out, [&](const auth::Principal& caller) {
    return planner_->ApprovePlan(req->plan_id(), auth::ActorOf(caller), req->comment());
  });
}

grpc::Status PlannerService::RejectPlan(grpc::ServerContext* ctx, const v1::RejectPlanRequest* req, v1::Plan* out) {
  return server::Handle(ctx, *req, out, [&](const auth::Principal& caller) {
    return planner_->RejectPlan(req->plan_id(), auth::ActorOf(caller), req->comment());
  });
}

grpc::Status PlannerService::PreviewPlan(grpc::ServerContext* ctx, const v1::PreviewPlanRequest* req,
                                         v1::PreviewPlanResponse* out) {
  return server::Handle(ctx, *req, [&](const auth::Principal& caller) -> absl::Status {
    ASSIGN_OR_RETURN(*out->mutable_plan(), planner_->PreviewPlan(*req, auth::ActorOf(caller)));
    FitInMessage(*out->mutable_plan(), limits_.max_plan_message_bytes);
    return absl::OkStatus();
  });
}

grpc::Status PlannerService::PlanRevision(grpc::ServerContext* ctx, const v1::PlanRevisionRequest* req,
                                          v1::PlanRevisionResponse* out) {
  return server::Handle(ctx, *req, out, [&](const auth::Principal& caller) -> absl::StatusOr<v1::PlanRevisionResponse> {
    // Approving on creation is an approval: a person needs that right too.
    // The deployer's rollbacks (acting for an operator) restore a revision
    // deployed there before and are approved as part of the rollback.
    if (req->approve() && caller.kind != auth::PrincipalKind::kService) {
      RETURN_IF_ERROR(
          server::CheckPermission(caller, auth::Permission::kApprove, auth::ScopeOfFields(*req), "PlanRevision"));
    }
    ASSIGN_OR_RETURN(v1::PlanRevisionResponse response,
                     planner_->PlanRevision(server::WithCallerAsActor(*req, caller)));
    if (response.has_plan()) FitInMessage(*response.mutable_plan(), limits_.max_plan_message_bytes);
    return response;
  });
}

grpc::Status PlannerService::WatchApprovedPlans(grpc::ServerContext* ctx, const v1::WatchApprovedPlansRequest* req,
                                                grpc::ServerWriter<v1::WatchApprovedPlansResponse>* writer) {
  if (absl::Status bad = server::CheckRequest(*req); !bad.ok()) return ToGrpcStatus(bad);
  absl::StatusOr<auth::Principal> caller = server::Authorize(*ctx, *req);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  absl::StatusOr<server::StreamLimiter::Slot> slot = server::AcquireStream(plan_streams_, *ctx);
  if (!slot.ok()) return ToGrpcStatus(slot.status());
  const bool whole = SeesSecretValues(*caller);
  std::string cursor = req->cursor();
  while (!ctx->IsCancelled() && !notifier_->cancelled()) {
    uint64_t seen = notifier_->Version();
    absl::StatusOr<std::vector<ReleasedPlan>> batch =
        planner_->ReleasedAfter(cursor, kReleasedBatch, kReleasedBatchBytes);
    if (!batch.ok()) return ToGrpcStatus(batch.status());
    for (ReleasedPlan& rp : *batch) {
      v1::WatchApprovedPlansResponse msg;
      msg.set_cursor(absl::StrCat(rp.release_seq));
      // A larger plan (or any, to a caller that may not see manifests) goes
      // without details: the deployer pages them in with ListPlanManifests.
      if (!whole || rp.plan.ByteSizeLong() > kWholePlanBytes) OmitDetails(rp.plan);
      *msg.mutable_plan() = std::move(rp.plan);
      if (!writer->Write(msg)) return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
      cursor = msg.cursor();
    }
    // More may follow a page (cut by count or bytes): read until one is empty.
    if (!batch->empty()) continue;
    // An empty cursor means "oldest unfinished release" and is re-evaluated
    // on every pass until the first plan is sent.
    notifier_->WaitForChange(seen, safety_poll_);
  }
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, "planner is shutting down; reconnect with the last cursor");
}

grpc::Status PlannerService::AcknowledgePlan(grpc::ServerContext* ctx, const v1::AcknowledgePlanRequest* req,
                                             v1::AcknowledgePlanResponse* out) {
  return server::Handle(ctx, *req, out, [&] { return planner_->AcknowledgePlan(*req); });
}

grpc::Status PlannerService::ReportPlanResult(grpc::ServerContext* ctx, const v1::ReportPlanResultRequest* req,
                                              v1::ReportPlanResultResponse* out) {
  return server::Handle(ctx, *req, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(*out->mutable_plan(), planner_->ReportPlanResult(*req));
    return absl::OkStatus();
  });
}

grpc::Status PlannerService::ReportPlanResults(grpc::ServerContext* ctx, const v1::ReportPlanResultsRequest* req,
                                               v1::ReportPlanResultsResponse* out) {
  return server::Handle(ctx, *req, [&]() -> absl::Status {
    std::vector<v1::ReportPlanResultRequest> results(req->results().begin(), req->results().end());
    ASSIGN_OR_RETURN(std::vector<absl::Status> taken, planner_->ReportPlanResults(results));
    for (size_t i = 0; i < taken.size(); ++i) {
      v1::ReportedResult* r = out->add_outcomes();
      r->set_plan_id(results[i].plan_id());
      r->set_code(static_cast<int>(taken[i].code()));
      r->set_message(std::string(taken[i].message()));
    }
    return absl::OkStatus();
  });
}

grpc::Status PlannerService::RefreshApplication(grpc::ServerContext* ctx, const v1::RefreshApplicationRequest* req,
                                                v1::RefreshApplicationResponse* out) {
  return server::Handle(ctx, *req, [&](const auth::Principal& caller) -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<v1::Plan> plans,
                     planner_->RefreshApplication(server::WithCallerAsActor(*req, caller)));
    for (auto& p : plans) *out->add_plans() = std::move(p);
    return absl::OkStatus();
  });
}

grpc::Status PlannerService::ListPullRequestPreviews(grpc::ServerContext* ctx,
                                                     const v1::ListPullRequestPreviewsRequest* req,
                                                     v1::ListPullRequestPreviewsResponse* out) {
  return server::Handle(ctx, *req, out, [&]() -> absl::StatusOr<v1::ListPullRequestPreviewsResponse> {
    if (previews_ == nullptr) return absl::UnimplementedError("pull-request previews are not enabled on this planner");
    return previews_->List(*req);
  });
}

grpc::Status PlannerService::GetPullRequestPreview(grpc::ServerContext* ctx, const v1::GetPullRequestPreviewRequest* req,
                                                   v1::PullRequestPreview* out) {
  return server::Handle(ctx, *req, out, [&]() -> absl::StatusOr<v1::PullRequestPreview> {
    if (previews_ == nullptr) return absl::UnimplementedError("pull-request previews are not enabled on this planner");
    return previews_->Get(*req);
  });
}

}  // namespace ferry::planner
