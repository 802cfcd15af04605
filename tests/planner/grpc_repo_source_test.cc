// GrpcRepoSource against a real gRPC server on loopback.

#include "services/planner/grpc_repo_source.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ferry/v1/repo_watcher.grpc.pb.h"
#include "tests/support/service_process.h"

namespace ferry::planner {
namespace {

class OneRefWatcher final : public v1::RepoWatcher::Service {
 public:
  grpc::Status GetRepositoryStatus(grpc::ServerContext*, const v1::GetRepositoryStatusRequest* req,
                                   v1::RepositoryStatus* out) override {
    out->set_repository_id(req->repository_id());
    v1::RefState* r = out->add_refs();
    r->set_ref("refs/heads/main");
    r->set_sha(std::string(40, 'a'));
    r->set_accepted_sha(std::string(40, 'a'));
    return grpc::Status::OK;
  }
  // Accepts commit a..a, refuses b..b; any other is not in the mirror.
  grpc::Status CheckRevision(grpc::ServerContext*, const v1::CheckRevisionRequest* req,
                             v1::CheckRevisionResponse* out) override {
    if (req->repository_id() != "config") return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such repository");
    if (req->revision() == std::string(40, 'a')) {
      out->set_accepted(true);
      out->set_reason("valid signature");
      out->set_signer("alice@ferry.example");
      return grpc::Status::OK;
    }
    if (req->revision() == std::string(40, 'b')) {
      out->set_accepted(false);
      out->set_reason("commit is not signed");
      out->set_signature_result(v1::SIGNATURE_RESULT_UNSIGNED);
      return grpc::Status::OK;
    }
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "commit is not in the mirror");
  }
};

// Services start together (compose, `make up`, the tests): the planner's
// first call to the repo-watcher could come while the repo-watcher was not
// listening yet, or while the channel was in its reconnect backoff, and
// failed at once with UNAVAILABLE ("failed to connect to all addresses"),
// failing ApplyDeclarativeConfig. Within the call's deadline it now waits.
TEST(GrpcRepoSourceTest, ARepoWatcherThatStartsALittleLaterIsWaitedFor) {
  const int port = testing::FreePort();
  const std::string address = absl::StrCat("127.0.0.1:", port);
  GrpcRepoSource source(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()), absl::Seconds(20));
  OneRefWatcher watcher;
  std::unique_ptr<grpc::Server> server;
  std::thread starter([&] {
    absl::SleepFor(absl::Milliseconds(1500));
    grpc::ServerBuilder builder;
    builder.AddListeningPort(address, grpc::InsecureServerCredentials());
    builder.RegisterService(&watcher);
    server = builder.BuildAndStart();
  });
  absl::StatusOr<std::string> sha = source.ResolveRef("config", "refs/heads/main");
  starter.join();
  ASSERT_TRUE(server != nullptr);
  EXPECT_TRUE(sha.ok()) << sha.status();
  server->Shutdown();
}

TEST(GrpcRepoSourceTest, CheckRevisionCarriesTheVerdictAndTheRepoWatchersErrors) {
  OneRefWatcher watcher;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&watcher);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_TRUE(server != nullptr);
  GrpcRepoSource source(grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()),
                        absl::Seconds(10));
  auto accepted = source.CheckRevision("config", std::string(40, 'a'));
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  EXPECT_TRUE(accepted->accepted());
  EXPECT_EQ(accepted->signer(), "alice@ferry.example");
  auto refused = source.CheckRevision("config", std::string(40, 'b'));
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_FALSE(refused->accepted());
  EXPECT_EQ(refused->reason(), "commit is not signed");
  EXPECT_EQ(source.CheckRevision("config", std::string(40, 'c')).status().code(), absl::StatusCode::kNotFound);
  server->Shutdown();
}

// A repo-watcher that never comes is still an error, at the deadline.
TEST(GrpcRepoSourceTest, ARepoWatcherThatNeverComesFailsAtTheDeadline) {
  GrpcRepoSource source(grpc::CreateChannel(absl::StrCat("127.0.0.1:", testing::FreePort()),
                                            grpc::InsecureChannelCredentials()),
                        absl::Milliseconds(800));
  absl::Time start = absl::Now();
  absl::StatusOr<std::string> sha = source.ResolveRef("config", "refs/heads/main");
  EXPECT_EQ(sha.status().code(), absl::StatusCode::kDeadlineExceeded) << sha.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

}  // namespace
}  // namespace ferry::planner
