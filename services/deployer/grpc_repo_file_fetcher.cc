#include "services/deployer/grpc_repo_file_fetcher.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/server/stream_limiter.h"
#include "common/status/grpc_status.h"

namespace ferry::deployer {

GrpcRepoFileFetcher::GrpcRepoFileFetcher(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout)
    : stub_(v1::RepoWatcher::NewStub(channel)), timeout_(timeout) {}

FileFetcher GrpcRepoFileFetcher::ForPlan(const v1::Plan& plan) {
  std::string repo = plan.target_revision().repository_id();
  std::string commit = plan.target_revision().sha();
  return [this, repo, commit](const std::string& source_path, const std::string& file) -> absl::StatusOr<std::string> {
    std::string dir = std::filesystem::path(source_path).parent_path().string();
    std::string path = std::filesystem::path(dir.empty() ? file : dir + "/" + file).lexically_normal().string();
    if (path.rfind("..", 0) == 0) return absl::InvalidArgumentError(absl::StrCat("\"", file, "\" escapes the repository"));
    return Read(repo, commit, path);
  };
}

absl::StatusOr<std::string> GrpcRepoFileFetcher::Read(const std::string& repository, const std::string& commit,
                                                      const std::string& path) {
  if (repository.empty() || commit.empty()) {
    return absl::InvalidArgumentError("the plan names no repository revision to read files from");
  }
  std::string data;
  bool found = false;
  // A repo-watcher with every ReadContent slot taken is retried briefly.
  grpc::Status s = server::RetryStreamLimitRefusals([&] {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout_));
    v1::ReadContentRequest req;
    req.set_repository_id(repository);
    req.set_commit(commit);
    req.set_path(path);
    auto reader = stub_->ReadContent(&ctx, req);
    v1::ReadContentResponse chunk;
    data.clear();
    found = false;
    while (reader->Read(&chunk)) {
      if (chunk.path() != path) continue;
      found = true;
      data += chunk.data();
    }
    return reader->Finish();
  });
  if (!s.ok()) return FromGrpcStatus(s);
  if (!found) return absl::NotFoundError(absl::StrCat(path, " not found at ", commit));
  return data;
}

}  // namespace ferry::deployer
