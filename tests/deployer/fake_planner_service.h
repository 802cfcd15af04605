#pragma once

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "common/concurrency/mutex.h"
#include "ferry/v1/planner.grpc.pb.h"

namespace ferry::deployer::testing {

// The planner side of the deployer's contract: releases plans in order,
// resumable by cursor, and records acknowledgements and results.
class FakePlanner final : public v1::Planner::Service {
 public:
  void Release(const v1::Plan& plan) {
    ferry::MutexLock l(&mu_);
    plans_.push_back(plan);
    cv_.SignalAll();
  }
  void Shutdown() {
    ferry::MutexLock l(&mu_);
    shutdown_ = true;
    cv_.SignalAll();
  }
  std::optional<v1::ReportPlanResultRequest> ResultFor(const std::string& plan_id, absl::Duration timeout) {
    ferry::MutexLock l(&mu_);
    const absl::Time deadline = absl::Now() + timeout;
    std::optional<v1::ReportPlanResultRequest> out = FindResult(plan_id);
    while (!out.has_value()) {
      const bool timed_out = cv_.WaitWithDeadline(&mu_, deadline);
      out = FindResult(plan_id);
      if (timed_out) break;
    }
    return out;
  }
  int ResultsFor(const std::string& plan_id) {
    ferry::MutexLock l(&mu_);
    return static_cast<int>(
        std::count_if(results_.begin(), results_.end(), [&](const auto& r) { return r.plan_id() == plan_id; }));
  }
  int AcksFor(const std::string& plan_id) {
    ferry::MutexLock l(&mu_);
    return static_cast<int>(std::count_if(acks_.begin(), acks_.end(), [&](const auto& a) { return a.plan_id() == plan_id; }));
  }

  grpc::Status WatchApprovedPlans(grpc::ServerContext* ctx, const v1::WatchApprovedPlansRequest* req,
                                  grpc::ServerWriter<v1::WatchApprovedPlansResponse>* writer) override {
    size_t next = req->cursor().empty() ? 0 : std::stoul(req->cursor());
    ferry::MutexLock l(&mu_);
    ++watches_;
    while (!ctx->IsCancelled() && !shutdown_) {
      const absl::Time deadline = absl::Now() + absl::Milliseconds(100);
      while (!shutdown_ && plans_.size() <= next) {
        if (cv_.WaitWithDeadline(&mu_, deadline)) break;
      }
      while (!shutdown_ && next < plans_.size()) {
        v1::WatchApprovedPlansResponse resp;
        resp.set_cursor(std::to_string(next + 1));
        *resp.mutable_plan() = plans_[next++];
        mu_.Unlock();
        bool ok = writer->Write(resp);
        mu_.Lock();
        if (!ok) return grpc::Status::CANCELLED;
      }
    }
    return grpc::Status::OK;
  }
  void FailNextAck() {
    ferry::MutexLock l(&mu_);
    fail_next_ack_ = true;
  }
  int watches() {
    ferry::MutexLock l(&mu_);
    return watches_;
  }

  grpc::Status AcknowledgePlan(grpc::ServerContext*, const v1::AcknowledgePlanRequest* req,
                               v1::AcknowledgePlanResponse* out) override {
    ferry::MutexLock l(&mu_);
    if (fail_next_ack_) {
      fail_next_ack_ = false;
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "planner database briefly down");
    }
    acks_.push_back(*req);
    out->set_proceed(true);
    out->set_state(v1::PLAN_STATE_EXECUTING);
    return grpc::Status::OK;
  }
  grpc::Status ReportPlanResult(grpc::ServerContext*, const v1::ReportPlanResultRequest* req,
                                v1::ReportPlanResultResponse*) override {
    ferry::MutexLock l(&mu_);
    results_.push_back(*req);
    cv_.SignalAll();
    return grpc::Status::OK;
  }

 private:
  // The latest result reported for `plan_id`.
  std::optional<v1::ReportPlanResultRequest> FindResult(const std::string& plan_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::optional<v1::ReportPlanResultRequest> out;
    for (const auto& r : results_) {
      if (r.plan_id() == plan_id) out = r;
    }
    return out;
  }

  ferry::Mutex mu_;
  ferry::CondVar cv_;  // Signalled when a plan is released, a result arrives or on Shutdown.
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  bool fail_next_ack_ ABSL_GUARDED_BY(mu_) = false;
  int watches_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<v1::Plan> plans_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::AcknowledgePlanRequest> acks_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::ReportPlanResultRequest> results_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::deployer::testing
