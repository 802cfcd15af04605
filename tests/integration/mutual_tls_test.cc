// The services calling each other over mutual TLS, as real binaries with the
// certificates scripts/ferry-certs makes: the planner's revision stream to
// the repo-watcher and the repo-watcher's audit outbox to ferry-audit; a peer
// presenting another service's certificate is not trusted.

#include <gtest/gtest.h>
#include <httplib.h>

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ferry/v1/audit.grpc.pb.h"
#include "ferry/v1/repo_watcher.grpc.pb.h"
#include "tests/support/service_process.h"
#include "tests/support/test_certs.h"
#include "tests/support/test_database.h"

namespace ferry {
namespace {

using testing::ServiceProcess;
using testing::TestCerts;

// A sample's value from a service's /metrics, or -1.
double Metric(const ServiceProcess& svc, const std::string& sample) {
  httplib::Client c("127.0.0.1", svc.metrics_port());
  auto res = c.Get("/metrics");
  if (!res) return -1;
  size_t at = res->body.find(sample + " ");
  if (at == std::string::npos) return -1;
  size_t start = at + sample.size() + 1;
  double v = -1;
  (void)absl::SimpleAtod(res->body.substr(start, res->body.find('\n', start) - start), &v);
  return v;
}

const char kWatchStreams[] = R"(ferry_grpc_streams_open{rpc="WatchRevisions",service="repo-watcher"})";

class MutualTlsTest : public ::testing::Test {
 protected:
  std::unique_ptr<ServiceProcess> Start(const std::string& binary, const std::string& cert_of,
                                        std::vector<std::string> more) {
    std::vector<std::string> args = TestCerts::Get().Flags(cert_of);
    args.push_back("--database-url=" + db_.url());
    args.push_back("--insecure-no-auth");
    args.insert(args.end(), more.begin(), more.end());
    auto svc = ServiceProcess::Start(binary, args);
    EXPECT_TRUE(svc.ok()) << svc.status();
    return svc.ok() ? std::move(*svc) : nullptr;
  }

  std::unique_ptr<ServiceProcess> StartRepoWatcher(const std::string& cert_of, const std::string& audit) {
    return Start("ferry-repo-watcher", cert_of,
                 {"--cache-dir=" + testing::MakeTempDir("mtls-cache"), "--webhook-address=127.0.0.1:0",
                  "--audit-address=" + audit});
  }

  std::unique_ptr<ServiceProcess> StartPlanner(const std::string& repo_watcher, const std::string& audit) {
    return Start("ferry-planner", "planner",
                 {"--repo-watcher-address=" + repo_watcher, "--deployer-address=127.0.0.1:1",
                  "--audit-address=" + audit});
  }

  // A client as a person's tool: the suite's CA, no certificate.
  std::shared_ptr<grpc::Channel> UserChannel(const ServiceProcess& svc) {
    return grpc::CreateChannel(svc.grpc_target(), TestCerts::Get().UserCredentials());
  }

  testing::TestDatabase db_;
};

TEST_F(MutualTlsTest, ThePlannersRevisionStreamAndTheAuditOutboxRunOverMutualTls) {
  auto audit = Start("ferry-audit", "audit", {});
  ASSERT_NE(audit, nullptr);
  auto rw = StartRepoWatcher("repo-watcher", audit->grpc_target());
  ASSERT_NE(rw, nullptr);
  auto planner = StartPlanner(rw->grpc_target(), audit->grpc_target());
  ASSERT_NE(planner, nullptr);

  // The planner follows WatchRevisions from its start.
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (Metric(*rw, kWatchStreams) != 1 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(Metric(*rw, kWatchStreams), 1) << planner->Log();

  // A refused registration is audited: through the repo-watcher's outbox to
  // ferry-audit, over mutual TLS.
  auto repo_watcher = v1::RepoWatcher::NewStub(UserChannel(*rw));
  grpc::ClientContext ctx;
  v1::CreateRepositoryRequest create;
  create.mutable_repository()->set_id("apps");  // no URL: refused, and audited
  v1::Repository created;
  grpc::Status s = repo_watcher->CreateRepository(&ctx, create, &created);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  auto audit_stub = v1::Audit::NewStub(UserChannel(*audit));
  std::vector<v1::Event> events;
  deadline = absl::Now() + absl::Seconds(20);
  while (events.empty() && absl::Now() < deadline) {
    grpc::ClientContext q;
    v1::QueryRequest req;
    req.mutable_filter()->add_actions(v1::AUDIT_ACTION_REPOSITORY_REGISTERED);
    v1::QueryResponse resp;
    grpc::Status qs = audit_stub->Query(&q, req, &resp);
    ASSERT_TRUE(qs.ok()) << qs.error_message();
    events.assign(resp.events().begin(), resp.events().end());
    if (events.empty()) absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_FALSE(events.empty()) << "the outbox did not deliver over TLS:\n" << rw->Log();
  EXPECT_EQ(events[0].service(), "repo-watcher");
}

TEST_F(MutualTlsTest, AServerPresentingAnotherServicesCertificateIsNotTrusted) {
  // A repo-watcher that presents the audit service's certificate (of the
  // suite's CA, but not for ferry-repo-watcher): the planner never opens its
  // stream to it.
  auto rw = StartRepoWatcher("audit", "127.0.0.1:1");
  ASSERT_NE(rw, nullptr);
  auto planner = StartPlanner(rw->grpc_target(), "127.0.0.1:1");
  ASSERT_NE(planner, nullptr);
  absl::SleepFor(absl::Seconds(3));
  EXPECT_EQ(Metric(*rw, kWatchStreams), 0) << planner->Log();
}

}  // namespace
}  // namespace ferry
