// The four service binaries as users run them: real processes on loopback,
// a real PostgreSQL, health over grpc.health.v1, metrics over HTTP.

#include <gtest/gtest.h>
#include <httplib.h>

#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_split.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/support/service_process.h"
#include "tests/support/test_certs.h"
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
                       "--db-connect-timeout=400ms", "--grpc-address=127.0.0.1:0", "--metrics-address=127.0.0.1:0",
                       "--insecure-plaintext"},
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

// The service name a binary's certificate is for: "ferry-planner" -> "planner".
std::string ServiceOf(const std::string& binary) { return binary.substr(6); }

TEST_P(ServicesTest, WithoutCertificatesOrInsecurePlaintextItRefusesToStartSayingHow) {
  auto r = RunCommand({testing::BinaryPath(GetParam()), "--database-url=postgresql://ferry@127.0.0.1:1/ferry",
                       "--db-connect-timeout=400ms", "--grpc-address=127.0.0.1:0", "--metrics-address=127.0.0.1:0"},
                      absl::Seconds(20));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("no TLS certificate"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("scripts/ferry-certs"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--tls-cert-file=DIR/" + ServiceOf(GetParam()) + ".pem"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--insecure-plaintext"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("database not reachable"), std::string::npos) << "checked before the database: " << r.output;
}

TEST_P(ServicesTest, ABadCertificateStopsItAtStartNamingTheFlagAndFile) {
  const testing::TestCerts& c = testing::TestCerts::Get();
  auto r = RunCommand({testing::BinaryPath(GetParam()), "--database-url=postgresql://ferry@127.0.0.1:1/ferry",
                       "--tls-ca-file=" + c.ca(), "--tls-cert-file=" + c.other_cert(ServiceOf(GetParam())),
                       "--tls-key-file=" + c.other_key(ServiceOf(GetParam()))},
                      absl::Seconds(20));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--tls-cert-file " + c.other_cert(ServiceOf(GetParam())) + ": not signed by the CA"),
            std::string::npos)
      << r.output;
  auto partial = RunCommand({testing::BinaryPath(GetParam()), "--database-url=postgresql://ferry@127.0.0.1:1/ferry",
                             "--tls-cert-file=" + c.cert(ServiceOf(GetParam()))},
                            absl::Seconds(20));
  EXPECT_EQ(partial.exit_code, 1) << partial.output;
  EXPECT_NE(partial.output.find("--tls-cert-file given without --tls-ca-file, --tls-key-file"), std::string::npos)
      << partial.output;
}

TEST_P(ServicesTest, ServesMutualTlsWithItsCertificateAndRefusesPlaintext) {
  testing::TestDatabase db;
  const testing::TestCerts& c = testing::TestCerts::Get();
  std::vector<std::string> args = c.Flags(ServiceOf(GetParam()));
  args.push_back("--database-url=" + db.url());
  args.push_back("--insecure-no-auth");
  auto svc = ServiceProcess::Start(GetParam(), args);  // health checked over TLS
  ASSERT_TRUE(svc.ok()) << svc.status();
  EXPECT_NE((*svc)->Log().find("\"tls\":\"on\""), std::string::npos) << (*svc)->Log();
  EXPECT_EQ((*svc)->Log().find("TLS is off"), std::string::npos) << (*svc)->Log();
  // Checked for the name ferry-<service>, as its peers do.
  grpc::ChannelArguments args_for_peer;
  args_for_peer.SetSslTargetNameOverride("ferry-" + ServiceOf(GetParam()));
  for (const auto& [name, credentials] :
       std::vector<std::pair<std::string, std::shared_ptr<grpc::ChannelCredentials>>>{
           {"plaintext", grpc::InsecureChannelCredentials()}, {"a peer", c.ServiceCredentials("planner")}}) {
    auto stub = grpc::health::v1::Health::NewStub(grpc::CreateCustomChannel((*svc)->grpc_target(), credentials, args_for_peer));
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    grpc::health::v1::HealthCheckResponse resp;
    grpc::Status s = stub->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &resp);
    if (name == "plaintext") {
      EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << "a plaintext client was served";
    } else {
      EXPECT_TRUE(s.ok()) << name << ": " << s.error_message();
    }
  }
}

TEST_P(ServicesTest, InsecurePlaintextIsAWarningAndShownWhenServing) {
  testing::TestDatabase db;
  auto svc = ServiceProcess::Start(GetParam(), {"--database-url=" + db.url(), "--insecure-plaintext", "--insecure-no-auth"});
  ASSERT_TRUE(svc.ok()) << svc.status();
  std::string log = (*svc)->Log();
  size_t warning = log.find("TLS is off (--insecure-plaintext)");
  ASSERT_NE(warning, std::string::npos) << log;
  size_t line = log.rfind('\n', warning);
  std::string warning_line = log.substr(line == std::string::npos ? 0 : line, log.find('\n', warning) - line);
  EXPECT_NE(warning_line.find("warn"), std::string::npos) << warning_line;
  EXPECT_NE(log.find("\"tls\":\"off\""), std::string::npos) << log;
}

INSTANTIATE_TEST_SUITE_P(AllServices, ServicesTest, ::testing::ValuesIn(kBinaries),
                         [](const auto& info) {
                           std::string n = info.param.substr(6);
                           return n == "repo-watcher" ? std::string("RepoWatcher") : n;
                         });

}  // namespace
}  // namespace ferry
