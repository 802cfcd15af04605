#include "services/planner/grpc_repo_source.h"

#include <algorithm>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/server/stream_limiter.h"
#include "common/status/grpc_status.h"
#include "common/status/status_macros.h"

namespace ferry::planner {
namespace {

class GrpcRevisionStream final : public RevisionStream {
 public:
  GrpcRevisionStream(v1::RepoWatcher::Stub* stub, const std::string& cursor) {
    v1::WatchRevisionsRequest request;
    request.set_cursor(cursor);
    reader_ = stub->WatchRevisions(&context_, request);
  }
  bool Next(v1::Revision* revision) override {
    v1::WatchRevisionsResponse msg;
    if (!reader_->Read(&msg)) return false;
    *revision = msg.revision();
    return true;
  }
  void Cancel() override { context_.TryCancel(); }
  absl::Status Finish() override { return FromGrpcStatus(reader_->Finish()); }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::WatchRevisionsResponse>> reader_;
};

}  // namespace

GrpcRepoSource::GrpcRepoSource(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout)
    : stub_(v1::RepoWatcher::NewStub(std::move(channel))), timeout_(timeout) {}

absl::StatusOr<std::vector<TreeEntry>> GrpcRepoSource::Read(const v1::ReadContentRequest& request,
                                                            std::vector<int64_t>* sizes) {
  std::vector<TreeEntry> out;
  // A repo-watcher with every ReadContent slot taken is retried briefly.
  grpc::Status status = server::RetryStreamLimitRefusals([&] {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
    // Within the deadline, a repo-watcher that is starting (or whose
    // connection is in backoff) is waited for rather than failed at once.
    context.set_wait_for_ready(true);
    std::unique_ptr<grpc::ClientReader<v1::ReadContentResponse>> reader = stub_->ReadContent(&context, request);
    out.clear();
    if (sizes != nullptr) sizes->clear();
    v1::ReadContentResponse chunk;
    while (reader->Read(&chunk)) {
      if (out.empty() || out.back().path != chunk.path() || chunk.offset() == 0) {
        TreeEntry e;
        e.path = chunk.path();
        e.type = chunk.type();
        e.mode = chunk.mode();
        e.blob_sha = chunk.blob_sha();
        e.symlink_target = chunk.symlink_target();
        out.push_back(std::move(e));
        if (sizes != nullptr) sizes->push_back(chunk.size());
      }
      out.back().data.append(chunk.data());
    }
    return reader->Finish();
  });
  if (!status.ok()) return FromGrpcStatus(status);
  return out;
}

absl::StatusOr<std::vector<TreeEntry>> GrpcRepoSource::ReadTree(const std::string& repository_id,
                                                                const std::string& commit, const std::string& path,
                                                                bool metadata_only) {
  v1::ReadContentRequest request;
  request.set_repository_id(repository_id);
  request.set_commit(commit);
  request.set_path(path);
  request.set_metadata_only(metadata_only);
  return Read(request, nullptr);
}

absl::StatusOr<RepoSource::Listing> GrpcRepoSource::ReadListing(const std::string& repository_id,
                                                                const std::string& commit, const std::string& path,
                                                                int64_t max_data_bytes) {
  v1::ReadContentRequest request;
  request.set_repository_id(repository_id);
  request.set_commit(commit);
  request.set_path(path);
  request.set_metadata_only(true);
  request.set_data_up_to_total_bytes(std::max<int64_t>(max_data_bytes, 0));
  std::vector<int64_t> sizes;
  Listing out;
  ASSIGN_OR_RETURN(out.entries, Read(request, &sizes));
  out.with_data = max_data_bytes > 0;
  for (size_t i = 0; i < out.entries.size() && out.with_data; ++i) {
    const TreeEntry& e = out.entries[i];
    if (e.type == v1::CONTENT_ENTRY_TYPE_FILE && static_cast<int64_t>(e.data.size()) != sizes[i]) out.with_data = false;
  }
  if (!out.with_data) {
    for (TreeEntry& e : out.entries) e.data.clear();
  }
  return out;
}

absl::StatusOr<std::string> GrpcRepoSource::ResolveRef(const std::string& repository_id, const std::string& ref) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  context.set_wait_for_ready(true);
  v1::GetRepositoryStatusRequest request;
  request.set_repository_id(repository_id);
  v1::RepositoryStatus status;
  grpc::Status s = stub_->GetRepositoryStatus(&context, request, &status);
  if (!s.ok()) return FromGrpcStatus(s);
  for (const auto& r : status.refs()) {
    if (r.ref() == ref) {
      if (r.accepted_sha().empty())
        return absl::FailedPreconditionError(absl::StrCat("ref ", ref, " of repository ", repository_id,
                                                          " has no accepted revision yet"));
      return r.accepted_sha();
    }
  }
  return absl::NotFoundError(absl::StrCat("ref ", ref, " is not tracked in repository ", repository_id));
}

absl::StatusOr<v1::CheckRevisionResponse> GrpcRepoSource::CheckRevision(const std::string& repository_id,
                                                                        const std::string& commit) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  context.set_wait_for_ready(true);
  v1::CheckRevisionRequest request;
  request.set_repository_id(repository_id);
  request.set_revision(commit);
  v1::CheckRevisionResponse response;
  grpc::Status s = stub_->CheckRevision(&context, request, &response);
  if (!s.ok()) return FromGrpcStatus(s);
  return response;
}

std::unique_ptr<RevisionStream> GrpcRepoSource::WatchRevisions(const std::string& cursor) {
  return std::make_unique<GrpcRevisionStream>(stub_.get(), cursor);
}

}  // namespace ferry::planner
