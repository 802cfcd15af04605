// ferry-audit as users run it: a real process on loopback, a real
// PostgreSQL, gRPC clients, a reflection-only client (what grpcurl does),
// metrics over HTTP, and SIGTERM.

#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <atomic>
#include <fstream>
#include <set>
#include <chrono>
#include <thread>

#include <google/protobuf/util/time_util.h>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "ferry/v1/audit.grpc.pb.h"
#include "services/audit/checkpoint_signer.h"
#include "tests/support/service_process.h"
#include "tests/support/test_database.h"

namespace ferry::audit {
namespace {

using google::protobuf::util::TimeUtil;
using testing::RunCommand;
using testing::ServiceProcess;

v1::Event MakeEvent(const std::string& key, const std::string& application = "web",
                    const std::string& actor = "alice",
                    v1::AuditAction action = v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED) {
  v1::Event e;
  e.set_service("deployer");
  e.mutable_actor()->set_id(actor);
  e.mutable_actor()->set_kind(v1::ACTOR_KIND_USER);
  e.set_action(action);
  e.mutable_subject()->set_application_id(application);
  e.set_message("deployed " + application);
  e.set_idempotency_key(key);
  return e;
}

class AuditServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // A synchronous C++ client polls idle connections only every 5 s by
    // default, so it would notice the server's GOAWAY (and let the server
    // finish shutting down) that late. Real clients keep polling; so does this.
    setenv("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "50", 1);
  }

  void SetUp() override {
    dir_ = testing::MakeTempDir("ferry-audit-svc");
    StartService();
  }

  void StartService(std::vector<std::string> args = {"--checkpoint-key-file=KEY"}) {
    for (std::string& a : args) {
      if (a == "--checkpoint-key-file=KEY") a = "--checkpoint-key-file=" + dir_ + "/key.pem";
    }
    args.push_back("--database-url=" + db_.url());
    args.push_back("--checkpoint-interval=1h");
    auto svc = ServiceProcess::Start("ferry-audit", args);
    ASSERT_TRUE(svc.ok()) << svc.status();
    svc_ = std::move(*svc);
    channel_ = grpc::CreateChannel(svc_->grpc_target(), grpc::InsecureChannelCredentials());
    stub_ = v1::Audit::NewStub(channel_);
  }

  v1::AppendResponse Append(const v1::Event& e) {
    grpc::ClientContext ctx;
    v1::AppendRequest req;
    *req.mutable_event() = e;
    v1::AppendResponse resp;
    grpc::Status s = stub_->Append(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }

  v1::VerifyChainResponse Verify() {
    grpc::ClientContext ctx;
    v1::VerifyChainResponse resp;
    grpc::Status s = stub_->VerifyChain(&ctx, v1::VerifyChainRequest(), &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }

  testing::CommandResult Reflect(std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/python3", FERRY_REFLECTION_CLIENT, FERRY_PYREFLECT_DIR};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  testing::TestDatabase db_;
  std::string dir_;
  std::unique_ptr<ServiceProcess> svc_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Audit::Stub> stub_;
};

TEST_F(AuditServiceTest, EightGrpcClientsAppendConcurrentlyIntoOneVerifiedOrder) {
  constexpr int kClients = 8;
  constexpr int kPerClient = 100;
  std::vector<std::vector<int64_t>> seqs(kClients);
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      // One channel per client, as separate processes would have.
      auto stub = v1::Audit::NewStub(grpc::CreateCustomChannel(
          svc_->grpc_target(), grpc::InsecureChannelCredentials(),
          [c] {
            grpc::ChannelArguments args;
            args.SetInt("client", c);
            return args;
          }()));
      for (int i = 0; i < kPerClient; ++i) {
        grpc::ClientContext ctx;
        // A channel's first connect can fail transiently when eight open at
        // once on a loaded machine (seen once in CI: "failed to connect to
        // all addresses"); the test is about the order of appends, so each
        // call waits for its channel rather than failing fast.
        ctx.set_wait_for_ready(true);
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
        v1::AppendRequest req;
        *req.mutable_event() = MakeEvent(absl::StrCat("c", c, "-", i));
        v1::AppendResponse resp;
        grpc::Status s = stub->Append(&ctx, req, &resp);
        ASSERT_TRUE(s.ok()) << s.error_message();
        seqs[c].push_back(resp.event().sequence());
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<int64_t> all;
  for (const auto& s : seqs) {
    for (size_t i = 1; i < s.size(); ++i) EXPECT_LT(s[i - 1], s[i]);
    all.insert(s.begin(), s.end());
  }
  ASSERT_EQ(all.size(), static_cast<size_t>(kClients * kPerClient));
  EXPECT_EQ(*all.rbegin(), kClients * kPerClient);
  v1::VerifyChainResponse v = Verify();
  EXPECT_TRUE(v.ok()) << v.first_broken_sequence() << " " << v.reason();
  EXPECT_EQ(v.events_verified(), kClients * kPerClient);

  // Retrying any of them appends nothing.
  v1::AppendResponse again = Append(MakeEvent("c3-42"));
  EXPECT_TRUE(again.duplicate());
  EXPECT_EQ(Verify().events_verified(), kClients * kPerClient);

  httplib::Client metrics("127.0.0.1", svc_->metrics_port());
  auto res = metrics.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_NE(res->body.find("ferry_audit_events_appended_total{action=\"AUDIT_ACTION_DEPLOYMENT_SUCCEEDED\"} 800"),
            std::string::npos)
      << res->body;
  EXPECT_NE(res->body.find("ferry_audit_chain_verifications_total{result=\"ok\"} 2"), std::string::npos);
  EXPECT_NE(res->body.find("ferry_audit_append_latency_seconds_count 801"), std::string::npos);
}

// Each open Tail holds a server thread: idle tails past the thread pool
// made every unary call fail with "Server Threadpool Exhausted". Past
// --max-streams (16) a Tail is now refused at once and unary calls answer.
TEST_F(AuditServiceTest, IdleTailsPastTheCapAreRefusedAndUnaryCallsStillAnswer) {
  constexpr int kTails = 24;
  struct Tail {
    grpc::ClientContext ctx;
    std::thread thread;
    std::atomic<bool> done{false};
    grpc::Status status;
  };
  std::vector<std::unique_ptr<Tail>> tails;
  for (int i = 0; i < kTails; ++i) {
    tails.push_back(std::make_unique<Tail>());
    Tail* t = tails.back().get();
    t->thread = std::thread([this, t] {
      v1::TailRequest req;
      req.set_from_head(true);
      auto reader = stub_->Tail(&t->ctx, req);
      v1::TailResponse msg;
      while (reader->Read(&msg)) {
      }
      t->status = reader->Finish();
      t->done = true;
    });
  }
  auto refused = [&] {
    int n = 0;
    for (auto& t : tails) n += t->done ? 1 : 0;
    return n;
  };
  for (absl::Time deadline = absl::Now() + absl::Seconds(15); refused() < kTails - 16 && absl::Now() < deadline;
       absl::SleepFor(absl::Milliseconds(50))) {
  }
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(refused(), kTails - 16);
  for (auto& t : tails) {
    if (!t->done) continue;
    EXPECT_EQ(t->status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_NE(t->status.error_message().find("audit Tail: 16 streams are already open"), std::string::npos)
        << t->status.error_message();
  }
  for (int i = 0; i < 10; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    v1::VerifyChainResponse resp;
    grpc::Status s = stub_->VerifyChain(&ctx, v1::VerifyChainRequest(), &resp);
    EXPECT_TRUE(s.ok()) << i << ": " << s.error_message();
    if (!s.ok()) break;
  }
  for (auto& t : tails) t->ctx.TryCancel();
  for (auto& t : tails) t->thread.join();
}

TEST_F(AuditServiceTest, BadRequestsAreInvalidArgumentNamingTheField) {
  struct Case {
    std::string field;
    v1::QueryRequest req;
  };
  std::vector<Case> cases(3);
  cases[0].field = "filter.end_time";
  *cases[0].req.mutable_filter()->mutable_start_time() = TimeUtil::SecondsToTimestamp(2000000000);
  *cases[0].req.mutable_filter()->mutable_end_time() = TimeUtil::SecondsToTimestamp(1000000000);
  cases[1].field = "filter.actions[0]";
  cases[1].req.mutable_filter()->add_actions(static_cast<v1::AuditAction>(4242));
  cases[2].field = "page_size";
  cases[2].req.set_page_size(5000);
  for (const Case& c : cases) {
    grpc::ClientContext ctx;
    v1::QueryResponse resp;
    grpc::Status s = stub_->Query(&ctx, c.req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.field;
    EXPECT_EQ(s.error_message().rfind(c.field, 0), 0u) << s.error_message();
  }
  grpc::ClientContext ctx;
  v1::AppendRequest req;
  *req.mutable_event() = MakeEvent("k", "web", "alice", v1::AUDIT_ACTION_UNSPECIFIED);
  v1::AppendResponse resp;
  grpc::Status s = stub_->Append(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("event.action"), std::string::npos) << s.error_message();
}

// The calls of README.md's "Audit trail with grpcurl", through a client that
// knows only server reflection.
TEST_F(AuditServiceTest, ReflectionOnlyClientMakesTheReadmeCalls) {
  for (int i = 0; i < 30; ++i) Append(MakeEvent(absl::StrCat("w", i), "web"));
  Append(MakeEvent("api-1", "api", "bob", v1::AUDIT_ACTION_PINNED));
  Append(MakeEvent("api-2", "api", "bob", v1::AUDIT_ACTION_UNPINNED));
  const std::string target = svc_->grpc_target();

  testing::CommandResult list = Reflect({"list", target});
  ASSERT_EQ(list.exit_code, 0) << list.output;
  EXPECT_NE(list.output.find("ferry.v1.Audit\n"), std::string::npos) << list.output;

  testing::CommandResult last20 = Reflect(
      {"call", target, "ferry.v1.Audit.Query",
       R"({"filter":{"application_id":"web"},"order":"SORT_ORDER_DESCENDING","page_size":20})"});
  ASSERT_EQ(last20.exit_code, 0) << last20.output;
  EXPECT_NE(last20.output.find("\"idempotencyKey\": \"w29\""), std::string::npos) << last20.output;
  EXPECT_NE(last20.output.find("\"idempotencyKey\": \"w10\""), std::string::npos) << last20.output;
  EXPECT_EQ(last20.output.find("\"idempotencyKey\": \"w9\""), std::string::npos) << last20.output;
  EXPECT_EQ(last20.output.find("api-1"), std::string::npos) << last20.output;
  EXPECT_NE(last20.output.find("nextPageToken"), std::string::npos) << last20.output;

  const std::string start = TimeUtil::ToString(TimeUtil::SecondsToTimestamp(absl::ToUnixSeconds(absl::Now()) - 3600));
  const std::string end = TimeUtil::ToString(TimeUtil::SecondsToTimestamp(absl::ToUnixSeconds(absl::Now()) + 3600));
  testing::CommandResult bob = Reflect(
      {"call", target, "ferry.v1.Audit.Query",
       absl::StrCat(R"({"filter":{"actor":"bob","start_time":")", start, R"(","end_time":")", end, R"("}})")});
  ASSERT_EQ(bob.exit_code, 0) << bob.output;
  EXPECT_NE(bob.output.find("api-1"), std::string::npos) << bob.output;
  EXPECT_NE(bob.output.find("api-2"), std::string::npos) << bob.output;
  EXPECT_EQ(bob.output.find("\"w0\""), std::string::npos) << bob.output;

  testing::CommandResult inverted = Reflect(
      {"call", target, "ferry.v1.Audit.Query",
       absl::StrCat(R"({"filter":{"actor":"bob","start_time":")", end, R"(","end_time":")", start, R"("}})")});
  EXPECT_NE(inverted.output.find("ERROR INVALID_ARGUMENT: filter.end_time"), std::string::npos) << inverted.output;

  // Tail: the backlog from a cursor, then a live event, then the client stops.
  std::thread late([&] {
    absl::SleepFor(absl::Milliseconds(500));
    Append(MakeEvent("live-1", "web"));
  });
  testing::CommandResult tail =
      Reflect({"call", target, "ferry.v1.Audit.Tail", R"({"after_sequence":30})", "--max-messages=3"});
  late.join();
  ASSERT_EQ(tail.exit_code, 0) << tail.output;
  std::vector<std::string> lines = absl::StrSplit(tail.output, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << tail.output;
  EXPECT_NE(lines[0].find("api-1"), std::string::npos) << tail.output;
  EXPECT_NE(lines[1].find("api-2"), std::string::npos) << tail.output;
  EXPECT_NE(lines[2].find("live-1"), std::string::npos) << tail.output;

  testing::CommandResult verify = Reflect({"call", target, "ferry.v1.Audit.VerifyChain", "{}"});
  ASSERT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_NE(verify.output.find("\"ok\": true"), std::string::npos) << verify.output;
  EXPECT_NE(verify.output.find("\"eventsVerified\": \"33\""), std::string::npos) << verify.output;
}

TEST_F(AuditServiceTest, SigtermEndsTailsPromptlyAndSignsAFinalCheckpointThatVerifiesOffline) {
  for (int i = 0; i < 5; ++i) Append(MakeEvent(absl::StrCat("k", i)));
  grpc::ClientContext tail_ctx;
  tail_ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  v1::TailRequest tail_req;
  tail_req.set_after_sequence(5);
  auto reader = stub_->Tail(&tail_ctx, tail_req);
  Append(MakeEvent("live"));
  v1::TailResponse got;
  ASSERT_TRUE(reader->Read(&got));
  EXPECT_EQ(got.event().idempotency_key(), "live");

  // A client keeps reading its tail, as a real one would.
  std::atomic<bool> tail_ended{false};
  grpc::Status tail_status;
  std::thread tail_reader([&] {
    v1::TailResponse more;
    while (reader->Read(&more)) {
    }
    tail_status = reader->Finish();
    tail_ended = true;
  });
  absl::Time stop = absl::Now();
  absl::StatusOr<int> code = svc_->Stop();
  absl::Duration took = absl::Now() - stop;
  tail_reader.join();
  ASSERT_TRUE(code.ok()) << code.status() << svc_->Log();
  EXPECT_EQ(*code, 0) << svc_->Log();
  EXPECT_LT(took, absl::Seconds(2)) << "an open Tail must not hold up shutdown\n" << svc_->Log();
  EXPECT_TRUE(tail_ended.load());
  EXPECT_EQ(tail_status.error_code(), grpc::StatusCode::UNAVAILABLE) << tail_status.error_message();
  EXPECT_NE(svc_->Log().find("generated a new checkpoint signing key"), std::string::npos) << svc_->Log();

  // The checkpoint signed at shutdown covers the head; fetch it after a restart.
  StartService();
  EXPECT_NE(svc_->Log().find("loaded checkpoint signing key"), std::string::npos) << svc_->Log();
  grpc::ClientContext ctx;
  v1::Checkpoint cp;
  grpc::Status s = stub_->GetCheckpoint(&ctx, v1::GetCheckpointRequest(), &cp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(cp.sequence(), 6);
  EXPECT_EQ(cp.head_hash(), got.event().hash());
  std::ofstream(dir_ + "/msg", std::ios::binary) << CheckpointMessage(cp.sequence(), cp.head_hash());
  std::ofstream(dir_ + "/sig", std::ios::binary) << cp.signature();
  testing::CommandResult r = RunCommand({"openssl", "pkeyutl", "-verify", "-pubin", "-inkey", dir_ + "/key.pem.pub",
                                         "-rawin", "-in", dir_ + "/msg", "-sigfile", dir_ + "/sig"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Signature Verified Successfully"), std::string::npos) << r.output;
  EXPECT_EQ(Verify().checkpoints_verified(), 1);
}

TEST_F(AuditServiceTest, ExportStreamsJsonLinesTheDocsRecipeVerifies) {
  for (int i = 0; i < 12; ++i) Append(MakeEvent(absl::StrCat("k", i)));
  grpc::ClientContext ctx;
  auto reader = stub_->Export(&ctx, v1::ExportRequest());
  v1::ExportResponse line;
  std::string path = dir_ + "/export.jsonl";
  int n = 0;
  {
    std::ofstream out(path);
    while (reader->Read(&line)) {
      out << line.json_line() << "\n";
      ++n;
    }
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(n, 12);
  testing::CommandResult r = RunCommand(
      {"/bin/sh", "-c", absl::StrCat("/usr/bin/python3 ", FERRY_AUDIT_TEST_DIR, "/verify_export.py < ", path)});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("ok: 12 events"), std::string::npos) << r.output;
}

TEST_F(AuditServiceTest, RefusesToStartWithoutAPersistentKeyUnlessTrialEphemeralKeyIsGiven) {
  testing::CommandResult refused =
      RunCommand({testing::BinaryPath("ferry-audit"), "--database-url=" + db_.url(), "--insecure-plaintext",
                  "--insecure-no-auth", "--grpc-address=127.0.0.1:0", "--metrics-address=127.0.0.1:0"});
  EXPECT_NE(refused.exit_code, 0) << refused.output;
  EXPECT_NE(refused.output.find("--checkpoint-key-file is required"), std::string::npos) << refused.output;
  ASSERT_TRUE(svc_->Stop().ok());
  StartService({"--trial-ephemeral-key"});
  EXPECT_NE(svc_->Log().find("ephemeral key"), std::string::npos) << svc_->Log();
  Append(MakeEvent("trial"));
  EXPECT_TRUE(Verify().ok());
}

TEST_F(AuditServiceTest, ARotatedKeyKeepsVerifyingThroughTrustedCheckpointKeysAndCheckpointsAreWitnessed) {
  Append(MakeEvent("old"));
  ASSERT_TRUE(svc_->Stop().ok());  // signs the checkpoint at 1 with key.pem
  const std::vector<std::string> rotated = {"--checkpoint-key-file=" + dir_ + "/new.pem",
                                            "--trusted-checkpoint-keys=" + dir_ + "/key.pem.pub",
                                            "--checkpoint-witness-dir=" + dir_ + "/witness"};
  StartService(rotated);
  Append(MakeEvent("new"));
  ASSERT_TRUE(svc_->Stop().ok());  // signs the checkpoint at 2 with new.pem, and witnesses it
  EXPECT_TRUE(std::ifstream(dir_ + "/witness/2.json").good());
  StartService(rotated);
  v1::VerifyChainResponse v = Verify();
  EXPECT_TRUE(v.ok()) << v.reason();
  EXPECT_EQ(v.checkpoints_verified(), 2);
  ASSERT_TRUE(svc_->Stop().ok());
  StartService({"--checkpoint-key-file=" + dir_ + "/new.pem"});
  v1::VerifyChainResponse untrusted = Verify();
  EXPECT_FALSE(untrusted.ok());
  EXPECT_EQ(untrusted.first_broken_sequence(), 1);
  EXPECT_NE(untrusted.reason().find("untrusted key"), std::string::npos) << untrusted.reason();
}

}  // namespace
}  // namespace ferry::audit
