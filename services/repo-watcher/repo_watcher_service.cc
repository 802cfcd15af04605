#include "services/repo-watcher/repo_watcher_service.h"

#include "common/logging/logger.h"
#include "common/status/grpc_status.h"
#include "common/status/nul_free.h"
#include "services/repo-watcher/repository_spec.h"

namespace ferry::repo_watcher {
namespace {

v1::Actor CallerOf(const grpc::ServerContext* ctx) {
  v1::Actor actor;
  actor.set_kind(v1::ACTOR_KIND_USER);
  auto it = ctx->client_metadata().find("x-ferry-actor");
  if (it != ctx->client_metadata().end()) {
    actor.set_id(std::string(it->second.data(), it->second.size()));
  } else {
    actor.set_kind(v1::ACTOR_KIND_SERVICE);
    actor.set_id(ctx->peer());
  }
  return actor;
}

}  // namespace

grpc::Status RepoWatcherService::CreateRepository(grpc::ServerContext* ctx, const v1::CreateRepositoryRequest* req,
                                                  v1::Repository* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  absl::StatusOr<v1::Repository> repo = registry_->Create(req->repository(), CallerOf(ctx));
  if (!repo.ok()) return ToGrpcStatus(repo.status());
  *out = std::move(*repo);
  return grpc::Status::OK;
}

grpc::Status RepoWatcherService::GetRepository(grpc::ServerContext*, const v1::GetRepositoryRequest* req,
                                               v1::Repository* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  absl::StatusOr<v1::Repository> repo = registry_->Get(req->id());
  if (!repo.ok()) return ToGrpcStatus(repo.status());
  *out = std::move(*repo);
  return grpc::Status::OK;
}

grpc::Status RepoWatcherService::ListRepositories(grpc::ServerContext*, const v1::ListRepositoriesRequest* req,
                                                  v1::ListRepositoriesResponse* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  absl::StatusOr<v1::ListRepositoriesResponse> page = registry_->List(req->page_size(), req->page_token());
  if (!page.ok()) return ToGrpcStatus(page.status());
  *out = std::move(*page);
  return grpc::Status::OK;
}

grpc::Status RepoWatcherService::UpdateRepository(grpc::ServerContext* ctx, const v1::UpdateRepositoryRequest* req,
                                                  v1::Repository* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  std::vector<std::string> mask(req->update_mask().paths().begin(), req->update_mask().paths().end());
  absl::StatusOr<v1::Repository> repo = registry_->Update(req->repository(), mask, CallerOf(ctx));
  if (!repo.ok()) return ToGrpcStatus(repo.status());
  *out = std::move(*repo);
  return grpc::Status::OK;
}

grpc::Status RepoWatcherService::DeleteRepository(grpc::ServerContext* ctx, const v1::DeleteRepositoryRequest* req,
                                                  v1::DeleteRepositoryResponse*) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  return ToGrpcStatus(registry_->Delete(req->id(), CallerOf(ctx)));
}

grpc::Status RepoWatcherService::GetRepositoryStatus(grpc::ServerContext*, const v1::GetRepositoryStatusRequest* req,
                                                     v1::RepositoryStatus* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  if (!IsValidId(req->repository_id())) {
    return ToGrpcStatus(absl::InvalidArgumentError("repository_id: must be a repository id"));
  }
  absl::StatusOr<v1::RepositoryStatus> status = store_->GetStatus(req->repository_id());
  if (!status.ok()) return ToGrpcStatus(status.status());
  *out = std::move(*status);
  return grpc::Status::OK;
}

grpc::Status RepoWatcherService::RefreshRepository(grpc::ServerContext*, const v1::RefreshRepositoryRequest* req,
                                                   v1::RefreshRepositoryResponse* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  absl::StatusOr<v1::Repository> repo = registry_->Get(req->repository_id());
  if (!repo.ok()) return ToGrpcStatus(repo.status());
  if (req->wait()) {
    // A failed check is reported in the status (last_error), not as an RPC error.
    absl::Status s = scheduler_->RefreshAndWait(repo->id());
    if (!s.ok()) return ToGrpcStatus(s);
  } else {
    scheduler_->Trigger(repo->id());
  }
  absl::StatusOr<v1::RepositoryStatus> status = store_->GetStatus(repo->id());
  if (!status.ok()) return ToGrpcStatus(status.status());
  *out->mutable_status() = std::move(*status);
  return grpc::Status::OK;
}

grpc::Status RepoWatcherService::WatchRevisions(grpc::ServerContext* ctx, const v1::WatchRevisionsRequest* req,
                                                grpc::ServerWriter<v1::WatchRevisionsResponse>* writer) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
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

grpc::Status RepoWatcherService::ListRevisions(grpc::ServerContext*, const v1::ListRevisionsRequest* req,
                                               v1::ListRevisionsResponse* out) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  absl::StatusOr<v1::ListRevisionsResponse> page = feed_->List(*req);
  if (!page.ok()) return ToGrpcStatus(page.status());
  *out = std::move(*page);
  return grpc::Status::OK;
}

grpc::Status RepoWatcherService::ReadContent(grpc::ServerContext*, const v1::ReadContentRequest* req,
                                             grpc::ServerWriter<v1::ReadContentResponse>* writer) {
  if (absl::Status bad = RejectNulInStrings(*req); !bad.ok()) return ToGrpcStatus(bad);
  return ToGrpcStatus(content_->Read(*req, [&](const v1::ReadContentResponse& chunk) { return writer->Write(chunk); }));
}

}  // namespace ferry::repo_watcher
