#include "services/repo-watcher/repo_watcher_service.h"

#include "common/logging/logger.h"
#include "common/server/handler.h"
#include "common/status/grpc_status.h"
#include "common/status/status_macros.h"
#include "services/repo-watcher/repository_spec.h"

namespace ferry::repo_watcher {

grpc::Status RepoWatcherService::CreateRepository(grpc::ServerContext* ctx, const v1::CreateRepositoryRequest* req,
                                                  v1::Repository* out) {
  return server::Handle(ctx, *req, out, [&](const auth::Principal& caller) { return registry_->Create(req->repository(), auth::ActorOf(caller)); });
}

grpc::Status RepoWatcherService::GetRepository(grpc::ServerContext* ctx, const v1::GetRepositoryRequest* req,
                                               v1::Repository* out) {
  return server::Handle(ctx, *req, out, [&] { return registry_->Get(req->id()); });
}

grpc::Status RepoWatcherService::ListRepositories(grpc::ServerContext* ctx, const v1::ListRepositoriesRequest* req,
                                                  v1::ListRepositoriesResponse* out) {
  return server::Handle(ctx, *req, out, [&] { return registry_->List(req->page_size(), req->page_token()); });
}

grpc::Status RepoWatcherService::UpdateRepository(grpc::ServerContext* ctx, const v1::UpdateRepositoryRequest* req,
                                                  v1::Repository* out) {
  return server::Handle(ctx, *req, out, [&](const auth::Principal& caller) {
    std::vector<std::string> mask(req->update_mask().paths().begin(), req->update_mask().paths().end());
    return registry_->Update(req->repository(), mask, auth::ActorOf(caller));
  });
}

grpc::Status RepoWatcherService::DeleteRepository(grpc::ServerContext* ctx, const v1::DeleteRepositoryRequest* req,
                                                  v1::DeleteRepositoryResponse*) {
  return server::Handle(ctx, *req, [&](const auth::Principal& caller) { return registry_->Delete(req->id(), auth::ActorOf(caller)); });
}

grpc::Status RepoWatcherService::GetRepositoryStatus(grpc::ServerContext* ctx, const v1::GetRepositoryStatusRequest* req,
                                                     v1::RepositoryStatus* out) {
  return server::Handle(ctx, *req, out, [&]() -> absl::StatusOr<v1::RepositoryStatus> {
    if (!IsValidId(req->repository_id())) return absl::InvalidArgumentError("repository_id: must be a repository id");
    return store_->GetStatus(req->repository_id());
  });
}

grpc::Status RepoWatcherService::RefreshRepository(grpc::ServerContext* ctx, const v1::RefreshRepositoryRequest* req,
                                                   v1::RefreshRepositoryResponse* out) {
  return server::Handle(ctx, *req, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(v1::Repository repo, registry_->Get(req->repository_id()));
    if (req->wait()) {
      // A failed check is reported in the status (last_error), not as an RPC error.
      RETURN_IF_ERROR(scheduler_->RefreshAndWait(repo.id()));
    } else {
      scheduler_->Trigger(repo.id());
    }
    ASSIGN_OR_RETURN(*out->mutable_status(), store_->GetStatus(repo.id()));
    return absl::OkStatus();
  });
}

grpc::Status RepoWatcherService::WatchRevisions(grpc::ServerContext* ctx, const v1::WatchRevisionsRequest* req,
                                                grpc::ServerWriter<v1::WatchRevisionsResponse>* writer) {
  if (absl::Status bad = server::CheckRequest(*req); !bad.ok()) return ToGrpcStatus(bad);
  absl::StatusOr<auth::Principal> caller = server::Authorize(*ctx, *req);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  absl::StatusOr<server::StreamLimiter::Slot> slot = server::AcquireStream(streams_.watch_revisions, *ctx);
  if (!slot.ok()) return ToGrpcStatus(slot.status());
  absl::Status ended = feed_->Watch(
      *req,
      [&](const v1::Revision& rev) {
        v1::WatchRevisionsResponse msg;
        *msg.mutable_revision() = rev;
        return writer->Write(msg);
      },
      [&] { return ctx->IsCancelled(); });
  logging::Debug("revision stream ended", {{"peer", ctx->peer()}, {"status", ended.ToString()}});
  return ToGrpcStatus(ended);
}

grpc::Status RepoWatcherService::ListRevisions(grpc::ServerContext* ctx, const v1::ListRevisionsRequest* req,
                                               v1::ListRevisionsResponse* out) {
  return server::Handle(ctx, *req, out, [&] { return feed_->List(*req); });
}

grpc::Status RepoWatcherService::ReadContent(grpc::ServerContext* ctx, const v1::ReadContentRequest* req,
                                             grpc::ServerWriter<v1::ReadContentResponse>* writer) {
  return server::Handle(ctx, *req, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(server::StreamLimiter::Slot slot, server::AcquireStream(streams_.read_content, *ctx));
    return content_->Read(*req, [&](const v1::ReadContentResponse& chunk) { return writer->Write(chunk); });
  });
}

grpc::Status RepoWatcherService::CheckRevision(grpc::ServerContext* ctx, const v1::CheckRevisionRequest* req,
                                               v1::CheckRevisionResponse* out) {
  return server::Handle(ctx, *req, out, [&] { return checker_->Check(req->repository_id(), req->revision()); });
}

grpc::Status RepoWatcherService::ReportCheck(grpc::ServerContext* ctx, const v1::ReportCheckRequest* req,
                                             v1::CommitCheck* out) {
  return server::Handle(ctx, *req, out, [&](const auth::Principal& caller) {
    return reviews_->ReportCheck(*req, auth::ActorOf(caller), "api");
  });
}

grpc::Status RepoWatcherService::ListChecks(grpc::ServerContext* ctx, const v1::ListChecksRequest* req,
                                            v1::ListChecksResponse* out) {
  return server::Handle(ctx, *req, out, [&] { return reviews_->ListChecks(*req); });
}

grpc::Status RepoWatcherService::ListPullRequests(grpc::ServerContext* ctx, const v1::ListPullRequestsRequest* req,
                                                  v1::ListPullRequestsResponse* out) {
  return server::Handle(ctx, *req, out, [&] { return reviews_->ListPullRequests(*req); });
}

grpc::Status RepoWatcherService::WatchReviewEvents(grpc::ServerContext* ctx, const v1::WatchReviewEventsRequest* req,
                                                   grpc::ServerWriter<v1::WatchReviewEventsResponse>* writer) {
  if (absl::Status bad = server::CheckRequest(*req); !bad.ok()) return ToGrpcStatus(bad);
  absl::StatusOr<auth::Principal> caller = server::Authorize(*ctx, *req);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  absl::StatusOr<server::StreamLimiter::Slot> slot = server::AcquireStream(streams_.watch_review_events, *ctx);
  if (!slot.ok()) return ToGrpcStatus(slot.status());
  absl::Status ended = reviews_->Watch(
      *req, [&](const v1::WatchReviewEventsResponse& event) { return writer->Write(event); },
      [&] { return ctx->IsCancelled(); });
  logging::Debug("review event stream ended", {{"peer", ctx->peer()}, {"status", ended.ToString()}});
  return ToGrpcStatus(ended);
}

}  // namespace ferry::repo_watcher
