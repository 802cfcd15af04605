// GrpcRepoFileFetcher against an in-process fake repo-watcher.

#include "services/deployer/grpc_repo_file_fetcher.h"

#include <gtest/gtest.h>

#include <map>

namespace ferry::deployer {
namespace {

class FakeRepoWatcher final : public v1::RepoWatcher::Service {
 public:
  std::map<std::string, std::string> files;  // "commit:path" -> content
  v1::ReadContentRequest last;

  grpc::Status ReadContent(grpc::ServerContext*, const v1::ReadContentRequest* req,
                           grpc::ServerWriter<v1::ReadContentResponse>* writer) override {
    last = *req;
    auto it = files.find(req->commit() + ":" + req->path());
    if (it == files.end()) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such path");
    // Two chunks, as large files arrive.
    size_t half = it->second.size() / 2;
    for (int i = 0; i < 2; ++i) {
      v1::ReadContentResponse chunk;
      chunk.set_path(req->path());
      chunk.set_type(v1::CONTENT_ENTRY_TYPE_FILE);
      chunk.set_offset(i == 0 ? 0 : half);
      chunk.set_data(i == 0 ? it->second.substr(0, half) : it->second.substr(half));
      chunk.set_last_chunk(i == 1);
      writer->Write(chunk);
    }
    return grpc::Status::OK;
  }
};

TEST(GrpcRepoFileFetcherTest, ReadsFilesRelativeToTheManifestFolderAtThePlannedCommit) {
  FakeRepoWatcher fake;
  std::string sha(40, 'c');
  fake.files[sha + ":apps/web/nginx.conf"] = "worker_processes 2;\nevents {}\n";
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&fake);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  GrpcRepoFileFetcher fetcher(grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  v1::Plan plan;
  plan.mutable_target_revision()->set_repository_id("repo");
  plan.mutable_target_revision()->set_sha(sha);
  FileFetcher fetch = fetcher.ForPlan(plan);
  absl::StatusOr<std::string> content = fetch("apps/web/config.yaml", "nginx.conf");
  ASSERT_TRUE(content.ok()) << content.status();
  EXPECT_EQ(*content, "worker_processes 2;\nevents {}\n");
  EXPECT_EQ(fake.last.repository_id(), "repo");
  EXPECT_EQ(fake.last.commit(), sha);
  EXPECT_EQ(fetch("apps/web/config.yaml", "missing.conf").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fetch("config.yaml", "../../etc/passwd").status().code(), absl::StatusCode::kInvalidArgument);
  server->Shutdown();
}

}  // namespace
}  // namespace ferry::deployer
