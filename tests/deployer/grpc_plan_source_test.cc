// GrpcPlanSource's outcome reports against an in-process fake planner.

#include "services/deployer/grpc_plan_source.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/concurrency/mutex.h"

namespace ferry::deployer {
namespace {

// Answers ReportPlanResult (NOT_FOUND for plan "gone"), and
// ReportPlanResults too when `batches` (otherwise UNIMPLEMENTED, as a
// planner from before it).
class FakePlanner final : public v1::Planner::Service {
 public:
  explicit FakePlanner(bool batches) : batches_(batches) {}

  grpc::Status ReportPlanResult(grpc::ServerContext*, const v1::ReportPlanResultRequest* req,
                                v1::ReportPlanResultResponse*) override {
    ferry::MutexLock l(&mu_);
    ++single_calls_;
    taken_.push_back(req->plan_id());
    if (req->plan_id() == "gone") return grpc::Status(grpc::StatusCode::NOT_FOUND, "plan gone not found");
    return grpc::Status::OK;
  }
  grpc::Status ReportPlanResults(grpc::ServerContext* ctx, const v1::ReportPlanResultsRequest* req,
                                 v1::ReportPlanResultsResponse* out) override {
    if (!batches_) return v1::Planner::Service::ReportPlanResults(ctx, req, out);
    ferry::MutexLock l(&mu_);
    ++batch_calls_;
    for (const v1::ReportPlanResultRequest& r : req->results()) {
      taken_.push_back(r.plan_id());
      v1::ReportedResult* o = out->add_outcomes();
      o->set_plan_id(r.plan_id());
      if (r.plan_id() == "gone") {
        o->set_code(grpc::StatusCode::NOT_FOUND);
        o->set_message("plan gone not found");
      }
    }
    return grpc::Status::OK;
  }

  int single_calls() {
    ferry::MutexLock l(&mu_);
    return single_calls_;
  }
  int batch_calls() {
    ferry::MutexLock l(&mu_);
    return batch_calls_;
  }
  std::vector<std::string> taken() {
    ferry::MutexLock l(&mu_);
    return taken_;
  }

 private:
  const bool batches_;
  ferry::Mutex mu_;
  int single_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int batch_calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> taken_ ABSL_GUARDED_BY(mu_);
};

class GrpcPlanSourceReportTest : public ::testing::TestWithParam<bool> {
 protected:
  GrpcPlanSourceReportTest() : planner_(GetParam()) {
    int port = 0;
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&planner_);
    server_ = builder.BuildAndStart();
    source_ = std::make_unique<GrpcPlanSource>(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  }
  ~GrpcPlanSourceReportTest() override { server_->Shutdown(); }

  static std::vector<v1::ReportPlanResultRequest> Results(const std::vector<std::string>& plans) {
    std::vector<v1::ReportPlanResultRequest> out;
    for (const std::string& p : plans) {
      v1::ReportPlanResultRequest r;
      r.set_plan_id(p);
      r.set_deployment_id("d-" + p);
      r.set_state(v1::PLAN_STATE_SUCCEEDED);
      out.push_back(r);
    }
    return out;
  }

  FakePlanner planner_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<GrpcPlanSource> source_;
};

// One call for a pass's outcomes, each answered on its own; a planner from
// before ReportPlanResults gets them one by one, and is not asked for the
// batch again.
TEST_P(GrpcPlanSourceReportTest, OutcomesGoInOneCallOrOneByOneToAnOlderPlanner) {
  const bool batches = GetParam();
  for (int pass = 0; pass < 2; ++pass) {
    absl::StatusOr<std::vector<absl::Status>> taken = source_->ReportResults(Results({"a", "gone", "b"}));
    ASSERT_TRUE(taken.ok()) << taken.status();
    ASSERT_EQ(taken->size(), 3u);
    EXPECT_TRUE((*taken)[0].ok()) << (*taken)[0];
    EXPECT_TRUE(absl::IsNotFound((*taken)[1])) << (*taken)[1];
    EXPECT_EQ((*taken)[1].message(), "plan gone not found");
    EXPECT_TRUE((*taken)[2].ok()) << (*taken)[2];
  }
  EXPECT_EQ(planner_.taken(), (std::vector<std::string>{"a", "gone", "b", "a", "gone", "b"}));
  EXPECT_EQ(planner_.batch_calls(), batches ? 2 : 0);
  EXPECT_EQ(planner_.single_calls(), batches ? 0 : 6);
}

INSTANTIATE_TEST_SUITE_P(Planners, GrpcPlanSourceReportTest, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? "Current" : "Older"; });

// An unreachable planner fails the call: nothing is said to be taken.
TEST(GrpcPlanSourceReportUnreachableTest, AnUnreachablePlannerFailsTheWholeCall) {
  GrpcPlanSource source(grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials()), absl::Seconds(2));
  v1::ReportPlanResultRequest r;
  r.set_plan_id("a");
  r.set_deployment_id("d-a");
  r.set_state(v1::PLAN_STATE_SUCCEEDED);
  absl::StatusOr<std::vector<absl::Status>> taken = source.ReportResults({r});
  EXPECT_TRUE(absl::IsUnavailable(taken.status()) || absl::IsDeadlineExceeded(taken.status())) << taken.status();
}

}  // namespace
}  // namespace ferry::deployer
