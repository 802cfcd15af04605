// TLS on a real gRPC server (ServerRunner) with the certificates
// scripts/ferry-certs makes: who is identified as a Ferry service, who is
// refused at the handshake, and what Tls::Load refuses to start with.

#include "common/auth/tls.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/server/server_runner.h"
#include "common/server/stream_limiter.h"
#include "ferry/v1/audit.grpc.pb.h"
#include "tests/support/service_process.h"
#include "tests/support/test_certs.h"
#include "tests/support/test_database.h"

namespace ferry::auth {
namespace {

using testing::TestCerts;

// Answers Append with the calling service (PeerServiceOf) in event.service;
// Tail holds a stream slot of its limiter until the caller cancels.
class PeerEcho final : public v1::Audit::Service {
 public:
  void set_limiter(server::StreamLimiter* limiter) { limiter_ = limiter; }

  grpc::Status Append(grpc::ServerContext* ctx, const v1::AppendRequest*, v1::AppendResponse* out) override {
    out->mutable_event()->set_service(PeerServiceOf(*ctx));
    return grpc::Status::OK;
  }

  grpc::Status Tail(grpc::ServerContext* ctx, const v1::TailRequest*, grpc::ServerWriter<v1::TailResponse>*) override {
    absl::StatusOr<server::StreamLimiter::Slot> slot = server::AcquireStream(limiter_, *ctx);
    if (!slot.ok()) return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, std::string(slot.status().message()));
    while (!ctx->IsCancelled()) absl::SleepFor(absl::Milliseconds(10));
    return grpc::Status::OK;
  }

 private:
  server::StreamLimiter* limiter_ = nullptr;
};

std::shared_ptr<const Tls> LoadFor(const std::string& service) {
  const TestCerts& c = TestCerts::Get();
  absl::StatusOr<std::shared_ptr<const Tls>> tls =
      Tls::Load({.ca_file = c.ca(), .cert_file = c.cert(service), .key_file = c.key(service)});
  EXPECT_TRUE(tls.ok()) << tls.status();
  return tls.ok() ? *tls : nullptr;
}

// A server with `service`'s certificate (or plaintext when null), its Tail
// limited to one stream for anyone plus one for Ferry services.
class TlsServer {
 public:
  explicit TlsServer(std::shared_ptr<const Tls> tls, server::ServerOptions extra = {}) {
    extra.service_name = "audit";
    extra.grpc_address = "127.0.0.1:0";
    extra.metrics_address = "127.0.0.1:0";
    extra.max_streams = 1;
    extra.reserved_service_streams = 1;
    extra.drain_timeout = absl::Milliseconds(500);
    extra.tls = std::move(tls);
    runner_ = std::make_unique<server::ServerRunner>(extra);
    echo_.set_limiter(runner_->NewStreamLimiter("Tail"));
    runner_->AddService(&echo_);
    absl::Status started = runner_->Start();
    EXPECT_TRUE(started.ok()) << started;
  }
  ~TlsServer() { runner_->Shutdown(); }

  std::string target() const { return absl::StrCat("127.0.0.1:", runner_->grpc_port()); }
  server::ServerRunner& runner() { return *runner_; }

 private:
  PeerEcho echo_;
  std::unique_ptr<server::ServerRunner> runner_;
};

// Append's answer: the service the server saw, or the failed status.
absl::StatusOr<std::string> CallerSeenBy(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = v1::Audit::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  v1::AppendRequest req;
  v1::AppendResponse resp;
  grpc::Status s = stub->Append(&ctx, req, &resp);
  if (!s.ok()) return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  return resp.event().service();
}

std::shared_ptr<grpc::Channel> ChannelWith(const std::string& target,
                                           std::shared_ptr<grpc::ChannelCredentials> credentials,
                                           const std::string& target_name = "") {
  grpc::ChannelArguments args;
  if (!target_name.empty()) args.SetSslTargetNameOverride(target_name);
  return grpc::CreateCustomChannel(target, credentials, args);
}

TEST(TlsTest, AServiceClientIsIdentifiedByItsCertificate) {
  TlsServer server(LoadFor("audit"));
  for (const char* service : {"planner", "deployer", "repo-watcher"}) {
    absl::StatusOr<std::string> seen = CallerSeenBy(LoadFor(service)->Channel(server.target(), "audit"));
    ASSERT_TRUE(seen.ok()) << service << ": " << seen.status();
    EXPECT_EQ(*seen, service);
  }
}

TEST(TlsTest, AClientWithoutACertificateConnectsWithNoServiceIdentity) {
  TlsServer server(LoadFor("audit"));
  // As grpcurl -cacert: the CA only, dialling 127.0.0.1 (an IP SAN of every
  // certificate).
  absl::StatusOr<std::string> seen = CallerSeenBy(ChannelWith(server.target(), TestCerts::Get().UserCredentials()));
  ASSERT_TRUE(seen.ok()) << seen.status();
  EXPECT_EQ(*seen, "");
}

TEST(TlsTest, AClientCertificateFromAnotherCaIsRefusedAtTheHandshake) {
  TlsServer server(LoadFor("audit"));
  const TestCerts& c = TestCerts::Get();
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = testing::ReadTextFile(c.ca());  // trusts the server...
  options.pem_cert_chain = testing::ReadTextFile(c.other_cert("planner"));  // ...but is not of its CA
  options.pem_private_key = testing::ReadTextFile(c.other_key("planner"));
  absl::StatusOr<std::string> seen = CallerSeenBy(ChannelWith(server.target(), grpc::SslCredentials(options)));
  ASSERT_FALSE(seen.ok()) << "served as " << *seen;
  EXPECT_EQ(seen.status().code(), absl::StatusCode::kUnavailable) << seen.status();
}

TEST(TlsTest, APlaintextClientIsRefused) {
  TlsServer server(LoadFor("audit"));
  absl::StatusOr<std::string> seen = CallerSeenBy(ChannelWith(server.target(), grpc::InsecureChannelCredentials()));
  ASSERT_FALSE(seen.ok()) << "served as " << *seen;
  EXPECT_EQ(seen.status().code(), absl::StatusCode::kUnavailable) << seen.status();
}

TEST(TlsTest, AClientExpectingThePlannerRefusesAServerWithTheDeployersCertificate) {
  TlsServer server(LoadFor("deployer"));
  std::shared_ptr<const Tls> planner = LoadFor("planner");
  absl::StatusOr<std::string> wrong = CallerSeenBy(LoadFor("repo-watcher")->Channel(server.target(), "planner"));
  ASSERT_FALSE(wrong.ok()) << "accepted the deployer's certificate as the planner";
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kUnavailable) << wrong.status();
  absl::StatusOr<std::string> right = CallerSeenBy(LoadFor("repo-watcher")->Channel(server.target(), "deployer"));
  ASSERT_TRUE(right.ok()) << right.status();
  EXPECT_EQ(*right, "repo-watcher");
}

TEST(TlsTest, AServerFromAnotherCaIsRefusedByAService) {
  const TestCerts& c = TestCerts::Get();
  absl::StatusOr<std::shared_ptr<const Tls>> other =
      Tls::Load({.ca_file = c.other_ca(), .cert_file = c.other_cert("audit"), .key_file = c.other_key("audit")});
  ASSERT_TRUE(other.ok()) << other.status();
  TlsServer server(*other);
  absl::StatusOr<std::string> seen = CallerSeenBy(LoadFor("planner")->Channel(server.target(), "audit"));
  ASSERT_FALSE(seen.ok());
  EXPECT_EQ(seen.status().code(), absl::StatusCode::kUnavailable) << seen.status();
}

// A Tail stream, read on a thread until it ends or is destroyed.
class OpenTail {
 public:
  explicit OpenTail(const std::shared_ptr<grpc::Channel>& channel, const std::string& header = "")
      : stub_(v1::Audit::NewStub(channel)) {
    if (!header.empty()) ctx_.AddMetadata("x-ferry-service", header);
    thread_ = std::thread([this] {
      auto reader = stub_->Tail(&ctx_, v1::TailRequest());
      v1::TailResponse r;
      while (reader->Read(&r)) {
      }
      status_ = reader->Finish();
      done_ = true;
    });
  }
  ~OpenTail() {
    ctx_.TryCancel();
    thread_.join();
  }
  // True, with the stream's status, when it ended within `wait` (the server
  // refused it); false while it stays open.
  bool EndedWithin(absl::Duration wait, grpc::Status* status) {
    absl::Time deadline = absl::Now() + wait;
    while (!done_ && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
    if (done_) *status = status_;
    return done_;
  }

 private:
  std::unique_ptr<v1::Audit::Stub> stub_;
  grpc::ClientContext ctx_;
  std::thread thread_;
  std::atomic<bool> done_{false};
  grpc::Status status_;
};

// Tail streams the server holds now.
double OpenTails(server::ServerRunner& runner) {
  for (const prometheus::MetricFamily& f : runner.registry().Collect()) {
    if (f.name != "ferry_grpc_streams_open") continue;
    for (const prometheus::ClientMetric& m : f.metric) {
      for (const prometheus::ClientMetric::Label& l : m.label) {
        if (l.name == "rpc" && l.value == "Tail") return m.gauge.value;
      }
    }
  }
  return -1;
}

void AwaitOpenTails(server::ServerRunner& runner, double n) {
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (OpenTails(runner) != n && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_EQ(OpenTails(runner), n);
}

TEST(TlsTest, ReservedStreamsGoToServiceCertificatesNotToTheServiceHeader) {
  TlsServer server(LoadFor("audit"));
  auto user = ChannelWith(server.target(), TestCerts::Get().UserCredentials());
  OpenTail held(user);  // a person takes the one general slot
  AwaitOpenTails(server.runner(), 1);
  grpc::Status status;
  OpenTail forged(user, "planner");
  ASSERT_TRUE(forged.EndedWithin(absl::Seconds(5), &status)) << "the x-ferry-service header took a reserved slot";
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  OpenTail planner(LoadFor("planner")->Channel(server.target(), "audit"));
  AwaitOpenTails(server.runner(), 2);
  EXPECT_FALSE(planner.EndedWithin(absl::Milliseconds(200), &status)) << status.error_message();
  OpenTail second(LoadFor("deployer")->Channel(server.target(), "audit"));
  ASSERT_TRUE(second.EndedWithin(absl::Seconds(5), &status)) << "past every slot";
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
}

TEST(TlsTest, WithoutTlsNoCallerGetsTheReserve) {
  TlsServer server(Tls::Plaintext());
  auto channel = ChannelWith(server.target(), grpc::InsecureChannelCredentials());
  OpenTail held(channel);
  AwaitOpenTails(server.runner(), 1);
  grpc::Status status;
  OpenTail claimed(channel, "planner");
  ASSERT_TRUE(claimed.EndedWithin(absl::Seconds(5), &status));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
}

TEST(TlsTest, MetricsCanBeServedOverTls) {
  const TestCerts& c = TestCerts::Get();
  server::ServerOptions options;
  options.metrics_tls_cert_file = c.cert("audit");
  options.metrics_tls_key_file = c.key("audit");
  TlsServer server(LoadFor("audit"), options);
  int port = server.runner().metrics_port();
  ASSERT_GT(port, 0);
  httplib::SSLClient https("127.0.0.1", port);
  https.set_ca_cert_path(c.ca().c_str());
  https.enable_server_certificate_verification(true);
  auto res = https.Get("/metrics");
  ASSERT_TRUE(res) << "no answer over HTTPS: " << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("ferry_build_info"), std::string::npos);
  httplib::Client plain("127.0.0.1", port);
  plain.set_read_timeout(2, 0);
  auto refused = plain.Get("/metrics");
  EXPECT_TRUE(!refused || refused->status != 200) << "answered plain HTTP";
}

TEST(TlsTest, MetricsTlsWithAKeyOfAnotherCertificateFailsToStart) {
  const TestCerts& c = TestCerts::Get();
  server::ServerRunner runner(server::ServerOptions{.service_name = "audit",
                                                    .grpc_address = "127.0.0.1:0",
                                                    .metrics_address = "127.0.0.1:0",
                                                    .metrics_tls_cert_file = c.cert("audit"),
                                                    .metrics_tls_key_file = c.key("planner")});
  absl::Status started = runner.Start();
  EXPECT_EQ(started.code(), absl::StatusCode::kInvalidArgument) << started;
  EXPECT_NE(started.message().find("--metrics-tls-key-file"), std::string::npos) << started;
}

// Tls::Load's refusals, each naming the flag and the file.
class TlsLoadTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::MakeTempDir("tls-load"); }
  std::string Write(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  absl::Status Load(const std::string& ca, const std::string& cert, const std::string& key) {
    return Tls::Load({.ca_file = ca, .cert_file = cert, .key_file = key}).status();
  }
  const TestCerts& c = TestCerts::Get();
  std::string dir_;
};

TEST_F(TlsLoadTest, MissingFilesAreNamed) {
  absl::Status s = Load(dir_ + "/nope.pem", c.cert("planner"), c.key("planner"));
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), absl::StrCat("--tls-ca-file ", dir_, "/nope.pem: no such file"));
  s = Load(c.ca(), dir_ + "/nope.pem", c.key("planner"));
  EXPECT_EQ(s.message(), absl::StrCat("--tls-cert-file ", dir_, "/nope.pem: no such file"));
  s = Load(c.ca(), c.cert("planner"), dir_ + "/nope.pem");
  EXPECT_EQ(s.message(), absl::StrCat("--tls-key-file ", dir_, "/nope.pem: no such file"));
}

TEST_F(TlsLoadTest, UnreadableFilesAreNamed) {
  absl::Status s = Load(c.ca(), dir_, c.key("planner"));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), absl::StrCat("--tls-cert-file ", dir_, ": is a directory"));
  s = Load(Write("empty.pem", ""), c.cert("planner"), c.key("planner"));
  EXPECT_EQ(s.message(), absl::StrCat("--tls-ca-file ", dir_, "/empty.pem: is empty"));
}

TEST_F(TlsLoadTest, FilesThatAreNotPemAreNamed) {
  std::string junk = Write("junk.pem", "not a certificate\n");
  absl::Status s = Load(junk, c.cert("planner"), c.key("planner"));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), absl::StrCat("--tls-ca-file ", junk, ": holds no PEM certificate"));
  s = Load(c.ca(), c.key("planner"), c.key("planner"));
  EXPECT_EQ(s.message(), absl::StrCat("--tls-cert-file ", c.key("planner"), ": holds no PEM certificate"));
  s = Load(c.ca(), c.cert("planner"), c.cert("planner"));
  EXPECT_NE(s.message().find(absl::StrCat("--tls-key-file ", c.cert("planner"), ": holds no PEM private key")),
            std::string::npos)
      << s;
  std::string cut = Write("cut.pem", testing::ReadTextFile(c.cert("planner")).substr(0, 200));
  s = Load(c.ca(), cut, c.key("planner"));
  EXPECT_EQ(s.message(), absl::StrCat("--tls-cert-file ", cut, ": holds no PEM certificate"));
}

TEST_F(TlsLoadTest, AKeyOfAnotherCertificateIsRefused) {
  absl::Status s = Load(c.ca(), c.cert("planner"), c.key("deployer"));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), absl::StrCat("--tls-key-file ", c.key("deployer"),
                                      ": is not the key of the certificate in --tls-cert-file ", c.cert("planner")));
}

TEST_F(TlsLoadTest, ACertificateOfAnotherCaIsRefused) {
  absl::Status s = Load(c.ca(), c.other_cert("planner"), c.other_key("planner"));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), absl::StrCat("--tls-cert-file ", c.other_cert("planner"), ": not signed by the CA in --tls-ca-file ",
                                      c.ca(), " (unable to get local issuer certificate)"));
}

TEST_F(TlsLoadTest, AnExpiredCertificateIsRefused) {
  // Signed by the suite's CA, valid for no time at all.
  std::string key = dir_ + "/expired-key.pem", csr = dir_ + "/expired.csr", cert = dir_ + "/expired.pem";
  for (const std::vector<std::string>& argv :
       {std::vector<std::string>{"openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key},
        {"openssl", "req", "-new", "-key", key, "-subj", "/CN=ferry-planner", "-out", csr},
        {"openssl", "x509", "-req", "-in", csr, "-CA", c.ca(), "-CAkey", c.dir() + "/ca-key.pem", "-CAcreateserial",
         "-CAserial", dir_ + "/ca.srl", "-days", "0", "-out", cert}}) {
    testing::CommandResult r = testing::RunCommand(argv);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  absl::SleepFor(absl::Seconds(1.1));
  absl::Status s = Load(c.ca(), cert, key);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), absl::StrCat("--tls-cert-file ", cert, ": not accepted by the CA in --tls-ca-file ", c.ca(),
                                      " (certificate has expired)"));
}

TEST_F(TlsLoadTest, PlaintextChecksNothing) {
  absl::StatusOr<std::shared_ptr<const Tls>> tls = Tls::Load({.ca_file = "", .cert_file = "", .key_file = "", .plaintext = true});
  ASSERT_TRUE(tls.ok());
  EXPECT_TRUE((*tls)->plaintext());
  absl::StatusOr<std::shared_ptr<const Tls>> real =
      Tls::Load({.ca_file = c.ca(), .cert_file = c.cert("planner"), .key_file = c.key("planner")});
  ASSERT_TRUE(real.ok()) << real.status();
  EXPECT_FALSE((*real)->plaintext());
}

}  // namespace
}  // namespace ferry::auth
