// DeploymentFollower against an in-process Deployer that streams what the
// real one may: a snapshot, then live step records that overlap it.

#include "cli/deployment_follower.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "cli/exit_codes.h"

namespace ferry::cli {
namespace {

class FakeDeployer final : public v1::Deployer::Service {
 public:
  std::vector<v1::WatchDeploymentResponse> events;
  // The first this many watches find no deployment (not recorded yet).
  std::atomic<int> not_found_first{0};
  std::atomic<int> watches{0};
  grpc::Status WatchDeployment(grpc::ServerContext*, const v1::WatchDeploymentRequest* req,
                               grpc::ServerWriter<v1::WatchDeploymentResponse>* writer) override {
    if (++watches <= not_found_first) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "deployment \"" + req->deployment_id() + "\" not found");
    }
    for (const auto& e : events) writer->Write(e);
    return grpc::Status::OK;
  }
};

// A planner whose plan names deployment dep-1 (acknowledged by the deployer).
class FakePlanner final : public v1::Planner::Service {
 public:
  grpc::Status GetPlan(grpc::ServerContext*, const v1::GetPlanRequest* req, v1::Plan* plan) override {
    plan->set_id(req->plan_id());
    plan->set_state(v1::PLAN_STATE_APPROVED);
    plan->set_deployment_id("dep-1");
    return grpc::Status::OK;
  }
};

v1::DeploymentStep Step(int seq, v1::StepResult result, const std::string& name) {
  v1::DeploymentStep s;
  s.set_sequence(seq);
  s.set_kind(v1::STEP_KIND_APPLY);
  s.set_action(v1::OBJECT_ACTION_UPDATE);
  s.mutable_object()->set_kind("ConfigFile");
  s.mutable_object()->set_name(name);
  s.set_result(result);
  s.set_attempt(1);
  return s;
}

// The record of deployment dep-1 in its final `state`.
v1::WatchDeploymentResponse Ended(v1::DeploymentState state) {
  v1::WatchDeploymentResponse end;
  end.mutable_deployment()->set_id("dep-1");
  end.mutable_deployment()->set_state(state);
  return end;
}

struct Fixture {
  FakeDeployer service;
  FakePlanner planner;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  void Start() {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(&service);
    b.RegisterService(&planner);
    server = b.BuildAndStart();
  }
  // Follows deployment dep-1, or (with `plan`) the deployment plan-1 names.
  std::string Run(absl::StatusOr<v1::Deployment>* result, bool plan = false) {
    ResolvedContext ctx;
    ctx.config.server = absl::StrCat("127.0.0.1:", port);
    ctx.config.insecure = true;
    Connection conn(ctx, absl::Seconds(10));
    std::FILE* f = std::tmpfile();
    Output out(Format::kTable, "never", f);
    DeploymentFollower follower(conn, out, absl::Now() + absl::Seconds(10));
    *result = plan ? follower.FollowPlan("plan-1") : follower.Follow("dep-1");
    std::fflush(f);
    std::rewind(f);
    std::string text;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
    std::fclose(f);
    return text;
  }
};

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(DeploymentFollowerTest, PrintsEachFinishedStepOnceWhenLiveRecordsOverlapTheSnapshot) {
  Fixture fx;
  v1::WatchDeploymentResponse snapshot;
  v1::Deployment* d = snapshot.mutable_deployment();
  d->set_id("dep-1");
  d->set_state(v1::DEPLOYMENT_STATE_RUNNING);
  *d->add_steps() = Step(1, v1::STEP_RESULT_SUCCEEDED, "a");
  fx.service.events.push_back(snapshot);
  // The started record of step 1 arrives after the snapshot that has it finished.
  v1::WatchDeploymentResponse e;
  *e.mutable_step() = Step(1, v1::STEP_RESULT_RUNNING, "a");
  fx.service.events.push_back(e);
  *e.mutable_step() = Step(1, v1::STEP_RESULT_SUCCEEDED, "a");
  fx.service.events.push_back(e);
  *e.mutable_step() = Step(2, v1::STEP_RESULT_RUNNING, "b");
  fx.service.events.push_back(e);
  *e.mutable_step() = Step(2, v1::STEP_RESULT_SUCCEEDED, "b");
  fx.service.events.push_back(e);
  fx.service.events.push_back(Ended(v1::DEPLOYMENT_STATE_SUCCEEDED));
  fx.Start();
  absl::StatusOr<v1::Deployment> result;
  std::string text = fx.Run(&result);
  EXPECT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(Count(text, "ConfigFile/a"), 1) << text;
  EXPECT_EQ(Count(text, "ConfigFile/b"), 1) << text;
  EXPECT_EQ(Count(text, "Succeeded: dep-1"), 1) << text;
}

TEST(DeploymentFollowerTest, ARolledBackDeploymentIsExitCodeThree) {
  Fixture fx;
  v1::WatchDeploymentResponse e;
  e.mutable_deployment()->set_id("dep-1");
  e.mutable_deployment()->set_application_id("web");
  e.mutable_deployment()->set_environment_id("prod");
  e.mutable_deployment()->set_state(v1::DEPLOYMENT_STATE_ROLLED_BACK);
  e.mutable_deployment()->set_message("health check failed");
  fx.service.events.push_back(e);
  fx.Start();
  absl::StatusOr<v1::Deployment> result;
  std::string text = fx.Run(&result);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(ExitCodeOf(result.status()), kExitWaitFailed);
  EXPECT_NE(result.status().message().find("ferry app history web --env prod"), std::string::npos) << result.status();
}

// The planner names a plan's deployment when the deployer acknowledges the
// plan, a moment before the deployer records it: `--wait` that asks in
// between waits for the record (a suite test failed with "deployment not
// found" under load). A deployment id given by the user is not waited for.
TEST(DeploymentFollowerTest, ADeploymentItsPlanNamesIsWaitedForUntilRecorded) {
  Fixture fx;
  fx.service.not_found_first = 3;
  fx.service.events.push_back(Ended(v1::DEPLOYMENT_STATE_SUCCEEDED));
  fx.Start();
  absl::StatusOr<v1::Deployment> result;
  std::string text = fx.Run(&result, /*plan=*/true);
  EXPECT_TRUE(result.ok()) << result.status() << "\n" << text;
  EXPECT_EQ(fx.service.watches.load(), 4);
  EXPECT_EQ(Count(text, "following deployment dep-1"), 1) << text;
  EXPECT_EQ(Count(text, "Succeeded: dep-1"), 1) << text;

  fx.service.watches = 0;
  fx.service.not_found_first = 1;
  text = fx.Run(&result);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("not found"), std::string::npos) << result.status();
  EXPECT_EQ(fx.service.watches.load(), 1);
}

}  // namespace
}  // namespace ferry::cli
