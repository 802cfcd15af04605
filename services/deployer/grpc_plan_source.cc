#include "services/deployer/grpc_plan_source.h"

#include "absl/strings/str_cat.h"
#include "common/server/stream_limiter.h"
#include "common/status/grpc_status.h"
#include "common/status/status_macros.h"

namespace ferry::deployer {
namespace {

void SetDeadline(grpc::ClientContext& ctx, absl::Duration timeout) {
  ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout));
}

// Puts one ListPlanManifests page back into `plan`.
absl::Status MergePage(const v1::ListPlanManifestsResponse& page, v1::Plan& plan) {
  if (page.manifests_digest() != plan.manifests_digest() || page.manifest_count() != plan.manifest_count() ||
      page.action_count() != plan.actions_size())
    return absl::FailedPreconditionError(absl::StrCat("plan ", plan.id(), ": a ListPlanManifests page does not match "
                                                      "the plan (", page.manifest_count(), " manifests, ",
                                                      page.action_count(), " actions, ", page.manifests_digest(), ")"));
  if (page.manifests_size() > 0 && page.manifest_offset() != plan.manifests_size())
    return absl::FailedPreconditionError(absl::StrCat("plan ", plan.id(), ": manifests page at ", page.manifest_offset(),
                                                      " arrived after ", plan.manifests_size(), " manifests"));
  for (const v1::Manifest& m : page.manifests()) *plan.add_manifests() = m;
  for (const v1::PlanActionDetail& d : page.action_details()) {
    if (d.index() < 0 || d.index() >= plan.actions_size())
      return absl::FailedPreconditionError(absl::StrCat("plan ", plan.id(), ": action detail ", d.index(), " out of range"));
    v1::PlanAction* action = plan.mutable_actions(d.index());
    action->set_json_patch(d.json_patch());
    action->set_unified_diff(d.unified_diff());
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status GrpcPlanSource::FetchDetails(v1::Plan& plan) {
  v1::ListPlanManifestsRequest req;
  req.set_plan_id(plan.id());
  plan.clear_manifests();
  // Each page holds at least one item, so a plan takes at most this many.
  const int64_t max_pages = int64_t{plan.manifest_count()} + plan.actions_size() + 1;
  for (int64_t pages = 0;; ++pages) {
    if (pages > max_pages)
      return absl::InternalError(absl::StrCat("plan ", plan.id(), ": ListPlanManifests kept returning page tokens"));
    grpc::ClientContext ctx;
    SetDeadline(ctx, timeout_);
    v1::ListPlanManifestsResponse page;
    grpc::Status s = stub_->ListPlanManifests(&ctx, req, &page);
    if (!s.ok()) return FromGrpcStatus(s);
    RETURN_IF_ERROR(MergePage(page, plan));
    if (page.next_page_token().empty()) break;
    req.set_page_token(page.next_page_token());
  }
  if (plan.manifests_size() != plan.manifest_count())
    return absl::FailedPreconditionError(absl::StrCat("plan ", plan.id(), ": got ", plan.manifests_size(), " of ",
                                                      plan.manifest_count(), " manifests"));
  plan.set_details_omitted(false);
  return absl::OkStatus();
}

GrpcPlanSource::GrpcPlanSource(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout)
    : stub_(v1::Planner::NewStub(channel)), timeout_(timeout) {}

absl::Status GrpcPlanSource::Watch(const std::string& cursor, const PlanCallback& on_plan) {
  grpc::ClientContext ctx;
  {
    ferry::MutexLock l(&mu_);
    if (cancelled_) return absl::CancelledError("plan watch cancelled");
    watching_ = &ctx;
  }
  v1::WatchApprovedPlansRequest req;
  req.set_cursor(cursor);
  std::unique_ptr<grpc::ClientReader<v1::WatchApprovedPlansResponse>> reader = stub_->WatchApprovedPlans(&ctx, req);
  v1::WatchApprovedPlansResponse resp;
  bool stopped_early = false;
  absl::Status fetch_failed;
  while (reader->Read(&resp)) {
    // Plans arrive without their manifests and diffs, whatever their size;
    // the full plan is put together here before anyone sees it.
    if (resp.plan().details_omitted()) {
      fetch_failed = FetchDetails(*resp.mutable_plan());
      if (!fetch_failed.ok()) {
        ctx.TryCancel();
        break;
      }
    }
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
  if (!fetch_failed.ok())
    return absl::Status(fetch_failed.code(), absl::StrCat("fetching the manifests of a released plan: ",
                                                          fetch_failed.message()));
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

absl::StatusOr<std::vector<absl::Status>> GrpcPlanSource::ReportResults(
    const std::vector<v1::ReportPlanResultRequest>& requests) {
  if (!no_batch_reports_.load()) {
    grpc::ClientContext ctx;
    SetDeadline(ctx, timeout_);
    v1::ReportPlanResultsRequest req;
    for (const v1::ReportPlanResultRequest& r : requests) *req.add_results() = r;
    v1::ReportPlanResultsResponse resp;
    grpc::Status s = stub_->ReportPlanResults(&ctx, req, &resp);
    if (s.ok()) {
      if (resp.outcomes_size() != static_cast<int>(requests.size()))
        return absl::InternalError(absl::StrCat("ReportPlanResults answered ", resp.outcomes_size(), " outcomes for ",
                                                requests.size(), " results"));
      std::vector<absl::Status> out;
      out.reserve(requests.size());
      for (const v1::ReportedResult& o : resp.outcomes())
        out.emplace_back(static_cast<absl::StatusCode>(o.code()), o.message());
      return out;
    }
    if (s.error_code() != grpc::StatusCode::UNIMPLEMENTED) return FromGrpcStatus(s);
    no_batch_reports_.store(true);  // an older planner: one by one from now on
  }
  std::vector<absl::Status> out;
  for (const v1::ReportPlanResultRequest& r : requests) {
    absl::Status s = ReportResult(r);
    if (!s.ok() && !absl::IsNotFound(s) && !absl::IsFailedPrecondition(s)) return s;
    out.push_back(s);
  }
  return out;
}

absl::StatusOr<v1::PlanRevisionResponse> GrpcPlanSource::PlanRevision(const v1::PlanRevisionRequest& request) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, timeout_);
  // A person's rollback: the planner records that person, because this
  // service (proved by its certificate) says it acts for them. Only a
  // service's word counts (docs/security.md).
  if (request.actor().kind() == v1::ACTOR_KIND_USER && !request.actor().id().empty()) {
    ctx.AddMetadata("x-ferry-on-behalf-of", request.actor().id());
  }
  v1::PlanRevisionResponse resp;
  grpc::Status s = stub_->PlanRevision(&ctx, request, &resp);
  if (!s.ok()) return FromGrpcStatus(s);
  return resp;
}

absl::Status GrpcPlanSource::Refresh(const v1::RefreshApplicationRequest& request) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, timeout_);
  // After a person's unpin: the planner records that person, as for a rollback.
  if (request.actor().kind() == v1::ACTOR_KIND_USER && !request.actor().id().empty()) {
    ctx.AddMetadata("x-ferry-on-behalf-of", request.actor().id());
  }
  v1::RefreshApplicationResponse resp;
  return FromGrpcStatus(stub_->RefreshApplication(&ctx, request, &resp));
}

}  // namespace ferry::deployer
