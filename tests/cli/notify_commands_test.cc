// `ferry notify` against a real ferry-notifier and ferry-audit (PostgreSQL)
// and a local HTTP receiver: create, list, test-send (delivered and
// refused), deliveries with failures, rm; usage errors exit 2.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/concurrency/mutex.h"
#include "common/process/run_process.h"
#include "ferry/v1/audit.grpc.pb.h"
#include "tests/support/service_process.h"
#include "tests/support/test_database.h"

namespace ferry {
namespace {

using testing::ServiceProcess;

// Records each POST's X-Ferry-Delivery; answers `status`.
class Receiver {
 public:
  Receiver() {
    server_.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      MutexLock lock(&mu_);
      got_.push_back(req.get_header_value("X-Ferry-Delivery"));
      res.status = status_;
      res.set_content(status_ == 200 ? "ok" : "receiver says no", "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~Receiver() {
    server_.stop();
    thread_.join();
  }
  std::string Url() const { return absl::StrCat("http://127.0.0.1:", port_, "/hook"); }
  void Answer(int status) {
    MutexLock lock(&mu_);
    status_ = status;
  }
  std::vector<std::string> Got() {
    MutexLock lock(&mu_);
    return got_;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  Mutex mu_;
  std::vector<std::string> got_ ABSL_GUARDED_BY(mu_);
  int status_ ABSL_GUARDED_BY(mu_) = 200;
};

struct CliRun {
  int code = -1;
  std::string out, err;
};

class NotifyCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("ferry-notify-cli");
    auto audit = ServiceProcess::Start("ferry-audit", {"--database-url=" + db_.url(), "--trial-ephemeral-key",
                                                       "--checkpoint-interval=1h"});
    ASSERT_TRUE(audit.ok()) << audit.status();
    audit_ = std::move(*audit);
    auto n = ServiceProcess::Start("ferry-notifier",
                                   {"--database-url=" + db_.url(), "--audit-address=" + audit_->grpc_target(),
                                    "--no-commit-statuses", "--no-declared-subscriptions", "--retry-initial=200ms",
                                    "--retry-max=1s", "--delivery-poll=100ms", "--max-attempts=2"});
    ASSERT_TRUE(n.ok()) << n.status();
    notifier_ = std::move(*n);
    audit_stub_ = v1::Audit::NewStub(grpc::CreateChannel(audit_->grpc_target(), grpc::InsecureChannelCredentials()));
  }

  CliRun Ferry(std::vector<std::string> args) {
    std::vector<std::string> argv = {std::string(FERRY_TEST_BIN_DIR) + "/ferry", "--insecure", "--server",
                                     "notifier=" + notifier_->grpc_target()};
    argv.insert(argv.end(), args.begin(), args.end());
    process::ProcessOptions options;
    options.env = {"FERRY_CONFIG=" + dir_ + "/config.yaml", "HOME=" + dir_, "PATH=/usr/bin:/bin", "LANG=C.UTF-8"};
    options.timeout = absl::Seconds(120);
    absl::StatusOr<process::ProcessResult> p = process::RunProcess(argv, options);
    CliRun r;
    if (!p.ok()) {
      ADD_FAILURE() << "ferry did not run: " << p.status();
      return r;
    }
    r.code = p->exit_code;
    r.out = p->stdout_text;
    r.err = p->stderr_text;
    return r;
  }

  std::vector<v1::Event> AuditOf(v1::AuditAction action) {
    v1::QueryRequest q;
    q.mutable_filter()->add_actions(action);
    v1::QueryResponse resp;
    grpc::ClientContext ctx;
    grpc::Status st = audit_stub_->Query(&ctx, q, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return {resp.events().begin(), resp.events().end()};
  }

  testing::TestDatabase db_;
  std::string dir_;
  Receiver receiver_;
  std::unique_ptr<ServiceProcess> audit_;
  std::unique_ptr<ServiceProcess> notifier_;
  std::unique_ptr<v1::Audit::Stub> audit_stub_;
};

template <typename F>
bool Eventually(F done, absl::Duration timeout = absl::Seconds(60)) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return done();
}

TEST_F(NotifyCommandsTest, CreateListTestDeliveriesAndRemove) {
  CliRun r = Ferry({"notify", "create", "hook", "--event", "deployment_failed,drift-detected", "--app", "web", "--sink",
                 "webhook", "--url", receiver_.Url(), "--template", "{{event}} {{application}}"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "subscription hook created: webhook http://127.0.0.1:")) << r.out;

  r = Ferry({"notify", "create", "bad", "--event", "deployment_exploded", "--sink", "webhook", "--url",
             receiver_.Url()});
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "--event deployment_exploded: not a notification event")) << r.err;
  r = Ferry({"notify", "create", "bad", "--event", "deployment_failed", "--sink", "slack", "--url", receiver_.Url(),
             "--template", "{{token}}"});
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "subscription.template")) << r.err;

  r = Ferry({"notify", "list"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "NAME")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "hook")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "deployment_failed,drift_detected")) << r.out;
  EXPECT_FALSE(absl::StrContains(r.out, "bad")) << "nothing half-made: " << r.out;

  // A test send goes out now, marked as a test; a refusal says why.
  r = Ferry({"notify", "test", "hook"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "test notification delivered to webhook http://127.0.0.1:")) << r.out;
  ASSERT_EQ(receiver_.Got().size(), 1u);
  EXPECT_TRUE(absl::StartsWith(receiver_.Got()[0], "test/hook/")) << receiver_.Got()[0];
  receiver_.Answer(404);
  r = Ferry({"notify", "test", "hook", "--event", "drift_detected"});
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "answered HTTP 404")) << r.err;
  // The outbox forwards the audit events a moment later.
  ASSERT_TRUE(Eventually([&] { return AuditOf(v1::AUDIT_ACTION_SUBSCRIPTION_TESTED).size() == 2; }));
  std::vector<v1::Event> tested = AuditOf(v1::AUDIT_ACTION_SUBSCRIPTION_TESTED);
  EXPECT_TRUE(tested[0].details().fields().at("delivered").bool_value());
  EXPECT_FALSE(tested[1].details().fields().at("delivered").bool_value());
  r = Ferry({"notify", "test", "nobody"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "no subscription nobody")) << r.err;

  // A real event the receiver refuses: the failure is listed, with why.
  {
    v1::AppendRequest req;
    req.mutable_event()->set_action(v1::AUDIT_ACTION_DEPLOYMENT_FAILED);
    req.mutable_event()->set_service("deployer");
    req.mutable_event()->mutable_actor()->set_id("ferry");
    req.mutable_event()->set_message("deployment of web failed");
    req.mutable_event()->set_idempotency_key("cli-notify-test/1");
    req.mutable_event()->mutable_subject()->set_application_id("web");
    req.mutable_event()->mutable_subject()->set_environment_id("prod");
    v1::AppendResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(audit_stub_->Append(&ctx, req, &resp).ok());
  }
  ASSERT_TRUE(Eventually([&] {
    CliRun f = Ferry({"notify", "deliveries", "--failed"});
    return f.code == 0 && absl::StrContains(f.out, "Failed");
  }));
  r = Ferry({"notify", "deliveries", "--failed", "-o", "wide"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "deployment_failed")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "answered HTTP 404")) << r.out;
  r = Ferry({"notify", "deliveries", "-o", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "\"DELIVERY_STATE_FAILED\"")) << r.out;
  r = Ferry({"notify", "deliveries", "--failed", "--pending"});
  EXPECT_EQ(r.code, 2);

  r = Ferry({"notify", "rm", "hook"});
  ASSERT_EQ(r.code, 0) << r.err;
  r = Ferry({"notify", "list"});
  EXPECT_FALSE(absl::StrContains(r.out, "hook")) << r.out;
  r = Ferry({"notify", "rm", "hook"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "no subscription hook")) << r.err;
}

}  // namespace
}  // namespace ferry
