// The four service binaries as users run them: real processes on loopback,
// a real PostgreSQL, health over grpc.health.v1, metrics over HTTP.

#include <gtest/gtest.h>
#include <httplib.h>

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "tests/support/service_process.h"
#include "tests/support/test_database.h"

namespace ferry {
namespace {

using testing::RunCommand;
using testing::ServiceProcess;

const std::vector<std::string> kBinaries = {"ferry-repo-watcher", "ferry-planner", "ferry-deployer", "ferry-audit"};

class ServicesTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ServicesTest, ServesHealthAndMetricsThenStopsCleanlyOnSigterm) {
  testing::TestDatabase db;
  auto svc = ServiceProcess::Start(GetParam(), {"--database-url=" + db.url()});
  ASSERT_TRUE(svc.ok()) << svc.status();
  httplib::Client metrics("127.0.0.1", (*svc)->metrics_port());
  auto res = metrics.Get("/metrics");
  ASSERT_TRUE(res) << "no answer from /metrics";
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("ferry_build_info"), std::string::npos) << res->body;
  absl::StatusOr<int> code = (*svc)->Stop();
  ASSERT_TRUE(code.ok()) << code.status() << (*svc)->Log();
  EXPECT_EQ(*code, 0) << (*svc)->Log();
  EXPECT_NE((*svc)->Log().find("\"msg\":\"stopped\""), std::string::npos) << (*svc)->Log();
}

TEST_P(ServicesTest, TwoReplicasStartingTogetherMigrateOnce) {
  testing::TestDatabase db;
  auto a = ServiceProcess::Start(GetParam(), {"--database-url=" + db.url()});
  auto b = ServiceProcess::Start(GetParam(), {"--database-url=" + db.url()});
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  int migrated = 0;
  for (const std::string& log : {(*a)->Log(), (*b)->Log()}) {
    if (log.find("schema migrated") != std::string::npos) ++migrated;
  }
  EXPECT_EQ(migrated, 1);
}

TEST_P(ServicesTest, UnreachableDatabaseExitsWithOneLineNamingTheAddress) {
  auto r = RunCommand({testing::BinaryPath(GetParam()), "--database-url=postgresql://ferry:hunter2@127.0.0.1:1/ferry",
                       "--db-connect-timeout=400ms", "--grpc-address=127.0.0.1:0", "--metrics-address=127.0.0.1:0"},
                      absl::Seconds(20));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  std::vector<std::string> lines = absl::StrSplit(r.output, '\n', absl::SkipEmpty());
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.back().find("cannot connect to PostgreSQL at 127.0.0.1:1/ferry"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("hunter2"), std::string::npos) << "password leaked: " << r.output;
  // Each retry was announced, so the wait was never silent.
  EXPECT_NE(r.output.find("database not reachable, retrying"), std::string::npos) << r.output;
}

TEST_P(ServicesTest, BadFlagValueIsRefusedWithItsName) {
  auto r = RunCommand({testing::BinaryPath(GetParam()), "--database-url=postgresql://x@127.0.0.1:1/x", "--threads=many"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--threads"), std::string::npos) << r.output;
  auto d = RunCommand({testing::BinaryPath(GetParam()), "--database-url=x", "--drain-timeout=later"});
  EXPECT_NE(d.exit_code, 0);
  EXPECT_NE(d.output.find("later"), std::string::npos) << d.output;
}

INSTANTIATE_TEST_SUITE_P(AllServices, ServicesTest, ::testing::ValuesIn(kBinaries),
                         [](const auto& info) {
                           std::string n = info.param.substr(6);
                           return n == "repo-watcher" ? std::string("RepoWatcher") : n;
                         });

}  // namespace
}  // namespace ferry
