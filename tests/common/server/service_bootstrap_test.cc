#include "common/server/service_bootstrap.h"

#include <gtest/gtest.h>

#include "common/server/server_runner.h"

namespace ferry::server {
namespace {

TEST(ServeUntilSignalTest, AStartThatFailsAfterTheServerIsUpShutsItDownBeforeReturning) {
  // Writing the port file is the last step of Start: the gRPC server is
  // already serving when it fails.
  ServerRunner runner(ServerOptions{.service_name = "test",
                                    .grpc_address = "127.0.0.1:0",
                                    .metrics_address = "127.0.0.1:0",
                                    .port_file = "/nonexistent-ferry-test-dir/ports"});
  bool hooks_ran = false;
  runner.OnShutdown([&] { hooks_ran = true; });
  EXPECT_EQ(ServeUntilSignal(runner), 1);
  EXPECT_TRUE(hooks_ran) << "the shutdown hooks must run while main's objects they use still exist, "
                            "not later from ~ServerRunner";
}

}  // namespace
}  // namespace ferry::server
