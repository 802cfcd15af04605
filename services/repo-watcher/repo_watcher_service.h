#pragma once

#include "common/server/stream_limiter.h"
#include "ferry/v1/repo_watcher.grpc.pb.h"
#include "services/repo-watcher/content_reader.h"
#include "services/repo-watcher/poll_scheduler.h"
#include "services/repo-watcher/repository_registry.h"
#include "services/repo-watcher/revision_checker.h"
#include "services/repo-watcher/review_log.h"
#include "services/repo-watcher/revision_feed.h"

namespace ferry::repo_watcher {

// The stream limiters of the repo-watcher's streaming RPCs (null: unlimited).
struct RepoWatcherStreamLimiters {
  server::StreamLimiter* watch_revisions = nullptr;
  server::StreamLimiter* read_content = nullptr;
  server::StreamLimiter* watch_review_events = nullptr;
};

// gRPC handlers of ferry.v1.RepoWatcher: translate, delegate, map status.
// Every call is authorised by server::Handle (common/server/handler.h); the
// audit actor is the authenticated principal it hands the handler.
// WatchRevisions, WatchReviewEvents and ReadContent each take a slot of their StreamLimiter
// for as long as they are open.
class RepoWatcherService final : public v1::RepoWatcher::Service {
 public:
  RepoWatcherService(RepositoryRegistry* registry, RepositoryStore* store, PollScheduler* scheduler,
                     RevisionFeed* feed, ContentReader* content, RevisionChecker* checker,
                     ReviewLog* reviews, RepoWatcherStreamLimiters streams = {})
      : registry_(registry),
        store_(store),
        scheduler_(scheduler),
        feed_(feed),
        content_(content),
        checker_(checker),
        reviews_(reviews),
        streams_(streams) {}

  grpc::Status CreateRepository(grpc::ServerContext* ctx, const v1::CreateRepositoryRequest* req,
                                v1::Repository* out) override;
  grpc::Status GetRepository(grpc::ServerContext* ctx, const v1::GetRepositoryRequest* req,
                             v1::Repository* out) override;
  grpc::Status ListRepositories(grpc::ServerContext* ctx, const v1::ListRepositoriesRequest* req,
                                v1::ListRepositoriesResponse* out) override;
  grpc::Status UpdateRepository(grpc::ServerContext* ctx, const v1::UpdateRepositoryRequest* req,
                                v1::Repository* out) override;
  grpc::Status DeleteRepository(grpc::ServerContext* ctx, const v1::DeleteRepositoryRequest* req,
                                v1::DeleteRepositoryResponse* out) override;
  grpc::Status GetRepositoryStatus(grpc::ServerContext* ctx, const v1::GetRepositoryStatusRequest* req,
                                   v1::RepositoryStatus* out) override;
  grpc::Status RefreshRepository(grpc::ServerContext* ctx, const v1::RefreshRepositoryRequest* req,
                                 v1::RefreshRepositoryResponse* out) override;
  grpc::Status WatchRevisions(grpc::ServerContext* ctx, const v1::WatchRevisionsRequest* req,
                              grpc::ServerWriter<v1::WatchRevisionsResponse>* writer) override;
  grpc::Status ListRevisions(grpc::ServerContext* ctx, const v1::ListRevisionsRequest* req,
                             v1::ListRevisionsResponse* out) override;
  grpc::Status ReadContent(grpc::ServerContext* ctx, const v1::ReadContentRequest* req,
                           grpc::ServerWriter<v1::ReadContentResponse>* writer) override;
  grpc::Status CheckRevision(grpc::ServerContext* ctx, const v1::CheckRevisionRequest* req,
                             v1::CheckRevisionResponse* out) override;
  grpc::Status ReportCheck(grpc::ServerContext* ctx, const v1::ReportCheckRequest* req, v1::CommitCheck* out) override;
  grpc::Status ListChecks(grpc::ServerContext* ctx, const v1::ListChecksRequest* req,
                          v1::ListChecksResponse* out) override;
  grpc::Status ListPullRequests(grpc::ServerContext* ctx, const v1::ListPullRequestsRequest* req,
                                v1::ListPullRequestsResponse* out) override;
  grpc::Status WatchReviewEvents(grpc::ServerContext* ctx, const v1::WatchReviewEventsRequest* req,
                                 grpc::ServerWriter<v1::WatchReviewEventsResponse>* writer) override;

 private:
  RepositoryRegistry* registry_;
  RepositoryStore* store_;
  PollScheduler* scheduler_;
  RevisionFeed* feed_;
  ContentReader* content_;
  RevisionChecker* checker_;
  ReviewLog* reviews_;
  const RepoWatcherStreamLimiters streams_;
};

}  // namespace ferry::repo_watcher
