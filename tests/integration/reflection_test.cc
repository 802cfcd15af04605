// Users query Ferry with grpcurl, which knows nothing but server reflection.
// This test does the same with a Python client that has no Ferry .proto.

#include <gtest/gtest.h>

#include "tests/support/service_process.h"
#include "tests/support/test_database.h"

namespace ferry {
namespace {

TEST(ReflectionTest, ReflectionOnlyClientListsAndDescribesAllFourApis) {
  testing::TestDatabase db;
  std::vector<std::unique_ptr<testing::ServiceProcess>> services;
  std::vector<std::string> argv = {"/usr/bin/python3", FERRY_REFLECTION_CLIENT, FERRY_PYREFLECT_DIR, "describe"};
  for (const char* bin : {"ferry-repo-watcher", "ferry-planner", "ferry-deployer", "ferry-audit"}) {
    auto svc = testing::ServiceProcess::Start(bin, {"--database-url=" + db.url()});
    ASSERT_TRUE(svc.ok()) << svc.status();
    argv.push_back((*svc)->grpc_target());
    services.push_back(std::move(*svc));
  }
  testing::CommandResult r = testing::RunCommand(argv);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* expected : {
           "service ferry.v1.RepoWatcher", "service ferry.v1.Planner", "service ferry.v1.Deployer",
           "service ferry.v1.Audit", "service ferry.v1.Access", "service grpc.health.v1.Health",
           "rpc ferry.v1.Access.CreateToken(", "rpc ferry.v1.Access.WhoAmI(",
           "rpc ferry.v1.RepoWatcher.WatchRevisions(", "rpc ferry.v1.Planner.ApprovePlan(",
           "rpc ferry.v1.Deployer.Rollback(", "rpc ferry.v1.Audit.Query(", "rpc ferry.v1.Audit.VerifyChain(",
           "message ferry.v1.QueryRequest {"}) {
    EXPECT_NE(r.output.find(expected), std::string::npos) << expected << "\n" << r.output;
  }
}

}  // namespace
}  // namespace ferry
