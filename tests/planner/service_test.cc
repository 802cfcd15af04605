// The ferry-planner binary as it runs: a real process on loopback with a real
// PostgreSQL, talking gRPC to in-process fake repo-watcher and deployer
// servers. Exercises the wiring: the revision stream, ReadContent, the
// WatchApprovedPlans hand-off across restarts, status codes and shutdown.

#include <gtest/gtest.h>
#include <httplib.h>

#include <grpcpp/grpcpp.h>

#include <regex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "ferry/v1/deployer.grpc.pb.h"
#include "ferry/v1/planner.grpc.pb.h"
#include "ferry/v1/repo_watcher.grpc.pb.h"
#include "tests/planner/fake_live_state_source.h"
#include "tests/planner/fake_repo_source.h"
#include "tests/support/service_process.h"
#include "tests/support/test_database.h"

namespace ferry::planner {
namespace {

using testing::FakeLiveStateSource;
using testing::FakeRepoSource;
using testing::FakeTree;

class FakeRepoWatcher final : public v1::RepoWatcher::Service {
 public:
  explicit FakeRepoWatcher(FakeRepoSource* repo) : repo_(repo) {}
  grpc::Status WatchRevisions(grpc::ServerContext* ctx, const v1::WatchRevisionsRequest* req,
                              grpc::ServerWriter<v1::WatchRevisionsResponse>* writer) override {
    size_t next = req->cursor().empty() ? 0 : std::stoul(req->cursor());
    while (!ctx->IsCancelled()) {
      for (const auto& rev : repo_->RevisionsAfter(next)) {
        v1::WatchRevisionsResponse msg;
        *msg.mutable_revision() = rev;
        if (!writer->Write(msg)) return grpc::Status::CANCELLED;
        ++next;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return grpc::Status::CANCELLED;
  }
  grpc::Status ReadContent(grpc::ServerContext*, const v1::ReadContentRequest* req,
                           grpc::ServerWriter<v1::ReadContentResponse>* writer) override {
    auto tree = repo_->ReadTree(req->repository_id(), req->commit(), req->path(), req->metadata_only());
    if (!tree.ok()) return grpc::Status(static_cast<grpc::StatusCode>(tree.status().code()), std::string(tree.status().message()));
    for (const auto& e : *tree) {
      v1::ReadContentResponse chunk;
      chunk.set_path(e.path);
      chunk.set_type(e.type);
      chunk.set_mode(e.mode);
      chunk.set_blob_sha(e.blob_sha);
      chunk.set_size(static_cast<int64_t>(e.data.size()));
      chunk.set_data(e.data);
      chunk.set_symlink_target(e.symlink_target);
      chunk.set_last_chunk(true);
      writer->Write(chunk);
    }
    return grpc::Status::OK;
  }
  grpc::Status CheckRevision(grpc::ServerContext*, const v1::CheckRevisionRequest* req,
                             v1::CheckRevisionResponse* out) override {
    auto verdict = repo_->CheckRevision(req->repository_id(), req->revision());
    if (!verdict.ok())
      return grpc::Status(static_cast<grpc::StatusCode>(verdict.status().code()), std::string(verdict.status().message()));
    *out = *verdict;
    return grpc::Status::OK;
  }
  grpc::Status GetRepositoryStatus(grpc::ServerContext*, const v1::GetRepositoryStatusRequest* req,
                                   v1::RepositoryStatus* out) override {
    out->set_repository_id(req->repository_id());
    for (const auto& [ref, sha] : repo_->Refs(req->repository_id())) {
      v1::RefState* r = out->add_refs();
      r->set_ref(ref);
      r->set_sha(sha);
      r->set_accepted_sha(sha);
    }
    return grpc::Status::OK;
  }

 private:
  FakeRepoSource* repo_;
};

class FakeDeployer final : public v1::Deployer::Service {
 public:
  explicit FakeDeployer(FakeLiveStateSource* live) : live_(live) {}
  grpc::Status ObserveLiveState(grpc::ServerContext*, const v1::ObserveLiveStateRequest* req,
                                v1::ObserveLiveStateResponse* out) override {
    auto s = live_->Observe(req->application_id(), req->environment_id(), req->target(), {});
    *out->mutable_state() = *s;
    return grpc::Status::OK;
  }

 private:
  FakeLiveStateSource* live_;
};

constexpr char kFerryYaml[] = R"(environments:
  local:
    host: {rootDir: /tmp/ferry-e2e-local}
    approval: auto
  prod:
    host: {rootDir: /tmp/ferry-e2e-prod}
    approval: manual
    promoteFrom: local
applications:
  hello:
    path: apps/hello
    environments: [local, prod]
    sync: {prune: true, selfHeal: true}
)";

constexpr char kHello[] = R"(apiVersion: ferry.dev/v1
kind: ConfigFile
metadata:
  name: hello-conf
  annotations: {ferry.dev/sync-wave: "-1"}
spec:
  path: hello.conf
  content: "greeting=hi\n"
---
apiVersion: ferry.dev/v1
kind: Process
metadata: {name: hello}
spec:
  command: [/bin/sleep, "3600"]
)";

class PlannerServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&watcher_);
    builder.RegisterService(&deployer_);
    fakes_ = builder.BuildAndStart();
    ASSERT_NE(port_, 0);
    StartPlanner();
  }
  void TearDown() override {
    planner_.reset();
    fakes_->Shutdown();
  }

  void StartPlanner() {
    auto p = ferry::testing::ServiceProcess::Start(
        "ferry-planner", {"--database-url=" + db_.url(), absl::StrCat("--repo-watcher-address=127.0.0.1:", port_),
                          absl::StrCat("--deployer-address=127.0.0.1:", port_), "--audit-address=127.0.0.1:1",
                          "--hold-check-interval=200ms", "--plan-stream-poll=60s"});
    ASSERT_TRUE(p.ok()) << p.status();
    planner_ = std::move(*p);
    stub_ = v1::Planner::NewStub(grpc::CreateChannel(planner_->grpc_target(), grpc::InsecureChannelCredentials()));
  }

  std::vector<v1::Plan> Plans(const std::string& env) {
    grpc::ClientContext ctx;
    v1::ListPlansRequest req;
    req.set_environment_id(env);
    v1::ListPlansResponse resp;
    EXPECT_TRUE(stub_->ListPlans(&ctx, req, &resp).ok());
    return {resp.plans().begin(), resp.plans().end()};
  }

  // Reads one plan from WatchApprovedPlans after `cursor`, within `timeout`.
  std::optional<v1::WatchApprovedPlansResponse> NextReleased(const std::string& cursor, absl::Duration timeout) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    v1::WatchApprovedPlansRequest req;
    req.set_cursor(cursor);
    auto reader = stub_->WatchApprovedPlans(&ctx, req);
    v1::WatchApprovedPlansResponse msg;
    if (!reader->Read(&msg)) return std::nullopt;
    ctx.TryCancel();
    return msg;
  }
  // ApplyDeclarativeConfig of ferry.yaml at main of repository "config".
  grpc::Status ApplyConfig(v1::ApplyDeclarativeConfigResponse* applied) {
    grpc::ClientContext ctx;
    v1::ApplyDeclarativeConfigRequest apply;
    apply.mutable_source()->set_repository_id("config");
    apply.mutable_source()->set_ref("main");
    return stub_->ApplyDeclarativeConfig(&ctx, apply, applied);
  }

  ferry::testing::TestDatabase db_;
  FakeRepoSource repo_;
  FakeLiveStateSource live_;
  FakeRepoWatcher watcher_{&repo_};
  FakeDeployer deployer_{&live_};
  int port_ = 0;
  std::unique_ptr<grpc::Server> fakes_;
  std::unique_ptr<ferry::testing::ServiceProcess> planner_;
  std::unique_ptr<v1::Planner::Stub> stub_;
};

TEST_F(PlannerServiceTest, CommitToPlanToHandOffAcrossRestarts) {
  FakeTree tree = {{"ferry.yaml", {kFerryYaml, ""}}, {"apps/hello/hello.yaml", {kHello, ""}}};
  v1::Revision r1 = repo_.Commit("config", "refs/heads/main", tree);

  v1::ApplyDeclarativeConfigResponse applied;
  grpc::Status s = ApplyConfig(&applied);
  ASSERT_TRUE(s.ok()) << s.error_message() << planner_->Log();
  EXPECT_EQ(applied.changes_size(), 3);

  // The local plan is auto-approved and streamed to the deployer.
  auto first = NextReleased("", absl::Seconds(10));
  ASSERT_TRUE(first) << planner_->Log();
  const v1::Plan& local = first->plan();
  EXPECT_EQ(local.environment_id(), "local");
  EXPECT_EQ(local.target_revision().sha(), r1.sha());
  ASSERT_EQ(local.actions_size(), 2);
  EXPECT_EQ(local.actions(0).object().kind(), "ConfigFile") << "wave -1 first";
  EXPECT_EQ(local.target().host().root_dir(), "/tmp/ferry-e2e-local");
  EXPECT_TRUE(Plans("prod").empty()) << "prod is planned once local succeeded";
  {
    httplib::Client metrics("127.0.0.1", planner_->metrics_port());
    auto res = metrics.Get("/metrics");
    ASSERT_TRUE(res);
    EXPECT_NE(res->body.find("ferry_plans_total{result=\"created\"} 1"), std::string::npos) << res->body;
    EXPECT_NE(res->body.find("ferry_render_duration_seconds_count{method=\"plain\"}"), std::string::npos)
        << res->body;
  }

  // Restart the planner: the stream resumes after the cursor without
  // redelivering, and the unfinished plan is still offered from scratch.
  ASSERT_TRUE(planner_->Stop().ok());
  StartPlanner();
  EXPECT_FALSE(NextReleased(first->cursor(), absl::Milliseconds(1500))) << "nothing new after the cursor";
  auto again = NextReleased("", absl::Seconds(5));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->plan().id(), local.id());

  {
    grpc::ClientContext ctx;
    v1::AcknowledgePlanRequest ack;
    ack.set_plan_id(local.id());
    ack.set_deployment_id("dep-1");
    v1::AcknowledgePlanResponse out;
    ASSERT_TRUE(stub_->AcknowledgePlan(&ctx, ack, &out).ok());
    EXPECT_TRUE(out.proceed());
  }
  live_.Apply(local);
  {
    grpc::ClientContext ctx;
    v1::ReportPlanResultRequest rep;
    rep.set_plan_id(local.id());
    rep.set_deployment_id("dep-1");
    rep.set_state(v1::PLAN_STATE_SUCCEEDED);
    v1::ReportPlanResultResponse out;
    ASSERT_TRUE(stub_->ReportPlanResult(&ctx, rep, &out).ok());
  }
  // Promotion met: prod now has a plan waiting for a person; a watcher
  // started now is woken by the approval, not by a poll.
  auto prod_plans = Plans("prod");
  ASSERT_EQ(prod_plans.size(), 1u);
  EXPECT_EQ(prod_plans[0].hold_reason(), v1::HOLD_REASON_AWAITING_APPROVAL);
  EXPECT_EQ(prod_plans[0].target_revision().sha(), r1.sha());
  {
    // The restarted planner rendered prod from the persisted render cache.
    httplib::Client metrics("127.0.0.1", planner_->metrics_port());
    auto res = metrics.Get("/metrics");
    ASSERT_TRUE(res);
    std::smatch hits;
    ASSERT_TRUE(std::regex_search(res->body, hits, std::regex("ferry_render_cache_hits_total ([0-9]+)")));
    EXPECT_GE(std::stoi(hits[1]), 1) << res->body;
  }
  std::optional<v1::WatchApprovedPlansResponse> streamed;
  std::thread watcher([&] { streamed = NextReleased(again->cursor(), absl::Seconds(10)); });
  absl::SleepFor(absl::Milliseconds(300));
  grpc::ClientContext approve_ctx;
  v1::ApprovePlanRequest approve;
  approve.set_plan_id(prod_plans[0].id());
  approve.mutable_actor()->set_id("bob");
  approve.set_comment("ship it");
  v1::Plan approved;
  s = stub_->ApprovePlan(&approve_ctx, approve, &approved);
  ASSERT_TRUE(s.ok()) << s.error_message();
  absl::Time approved_at = absl::Now();
  watcher.join();
  ASSERT_TRUE(streamed);
  EXPECT_EQ(streamed->plan().id(), prod_plans[0].id());
  // A small plan comes whole: the deployer fetches nothing more.
  EXPECT_FALSE(streamed->plan().details_omitted());
  EXPECT_GT(streamed->plan().manifests_size(), 0);
  // Streams re-check only every 60 s here: a prompt delivery is the notifier's.
  EXPECT_LT(absl::Now() - approved_at, absl::Seconds(5));

  // A commit touching nothing the app reads makes no plan.
  tree["README.md"] = {"docs", ""};
  repo_.Commit("config", "refs/heads/main", tree);
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ(Plans("local").size(), 1u);

}

TEST_F(PlannerServiceTest, InvalidInputGivesInvalidArgumentNamingTheField) {
  grpc::ClientContext ctx;
  v1::CreateApplicationRequest req;
  req.mutable_application()->set_id("web");
  req.mutable_application()->set_repository_id("config");
  req.mutable_application()->set_ref("main");
  req.mutable_application()->set_render_method(v1::RENDER_METHOD_PLAIN);
  req.mutable_application()->add_environment_ids("nowhere");
  v1::Application out;
  grpc::Status s = stub_->CreateApplication(&ctx, req, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("application.environment_ids[0]: unknown environment \"nowhere\""), std::string::npos)
      << s.error_message();
  grpc::ClientContext ctx2;
  v1::GetPlanRequest get;
  get.set_plan_id("plan-404");
  v1::Plan plan;
  EXPECT_EQ(stub_->GetPlan(&ctx2, get, &plan).error_code(), grpc::StatusCode::NOT_FOUND);
}

// libpq ends a text parameter at U+0000, so "hello\0x" would have named
// (and deleted) "hello": every request with such text is refused first.
TEST_F(PlannerServiceTest, TextWithANulIsRefusedNamingTheFieldAndNamesNoOtherRecord) {
  FakeTree tree = {{"ferry.yaml", {kFerryYaml, ""}}, {"apps/hello/hello.yaml", {kHello, ""}}};
  repo_.Commit("config", "refs/heads/main", tree);
  v1::ApplyDeclarativeConfigResponse applied;
  grpc::Status s = ApplyConfig(&applied);
  ASSERT_TRUE(s.ok()) << s.error_message() << planner_->Log();

  grpc::ClientContext delete_ctx;
  v1::DeleteApplicationRequest del;
  del.set_id(std::string("hello\0x", 7));
  v1::DeleteApplicationResponse deleted;
  s = stub_->DeleteApplication(&delete_ctx, del, &deleted);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message().rfind("id: contains a NUL character", 0), 0u) << s.error_message();
  grpc::ClientContext get_ctx;
  v1::GetApplicationRequest get;
  get.set_id("hello");
  v1::Application app;
  EXPECT_TRUE(stub_->GetApplication(&get_ctx, get, &app).ok()) << "hello was deleted";

  grpc::ClientContext list_ctx;
  v1::ListPlansRequest list;
  list.set_application_id("hello");
  list.set_environment_id(std::string("local\0", 6));
  v1::ListPlansResponse plans;
  s = stub_->ListPlans(&list_ctx, list, &plans);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message().rfind("environment_id: contains a NUL character", 0), 0u) << s.error_message();
}

TEST_F(PlannerServiceTest, ShutdownEndsOpenPlanStreamsPromptly) {
  grpc::ClientContext ctx;
  auto reader = stub_->WatchApprovedPlans(&ctx, v1::WatchApprovedPlansRequest());
  absl::SleepFor(absl::Milliseconds(300));
  absl::Time start = absl::Now();
  auto code = planner_->Stop();
  ASSERT_TRUE(code.ok()) << code.status() << planner_->Log();
  EXPECT_EQ(*code, 0) << planner_->Log();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  v1::WatchApprovedPlansResponse msg;
  EXPECT_FALSE(reader->Read(&msg));
  grpc::Status s = reader->Finish();
  EXPECT_FALSE(s.ok());
}

}  // namespace
}  // namespace ferry::planner
