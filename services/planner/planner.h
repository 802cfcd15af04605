#pragma once

#include <limits>

#include <set>
#include <string>
#include <utility>
#include <vector>

#include <google/protobuf/field_mask.pb.h>

#include "absl/status/statusor.h"
#include "common/clock/clock.h"
#include "common/concurrency/change_signal.h"
#include "ferry/v1/planner.pb.h"
#include "services/planner/approval_policy.h"
#include "services/planner/catalog.h"
#include "services/planner/check_source.h"
#include "services/planner/declarative_reconciler.h"
#include "services/planner/hold_evaluator.h"
#include "services/planner/live_state_source.h"
#include "services/planner/plan_lifecycle.h"
#include "services/planner/plan_maker.h"
#include "services/planner/plan_view.h"
#include "services/planner/planner_events.h"
#include "services/planner/planner_metrics.h"
#include "services/planner/planner_store.h"
#include "services/planner/renderer.h"
#include "services/planner/repo_source.h"
#include "services/planner/revision_gate.h"
#include "services/planner/revision_planner.h"

namespace ferry::planner {

// One job: the planner's front. Builds its components over one store and
// forwards each call to the one that does it, so the gRPC handlers
// (PlannerService) see one object:
//   Catalog                 applications and environments (API)
//   DeclarativeReconciler   ferry.yaml
//   PlanMaker               one plan: render, diff, approval, persist
//   HoldEvaluator           hold rules and their re-evaluation
//   RevisionGate            revisions a request may not use (signature policy, rollback)
//   RevisionPlanner         what to plan: revisions, explicit, refresh, promotion
//   PlanLifecycle           approve, reject, hand-off, results
// No gRPC, no SQL. Holds no state beyond its components; thread-safe.
//
// Status codes: INVALID_ARGUMENT names the field; NOT_FOUND for unknown ids;
// FAILED_PRECONDITION for a state that forbids the call (declared in Git,
// plan not pending, promotion gate naming the environment); UNAVAILABLE when
// a peer or the database is down (retry).
class Planner {
 public:
  // `approvals` is the access policy's separation of duties per environment
  // (main.cc wires it); null means one approval by anyone everywhere
  // (DefaultApprovalPolicy). `checks` is where required checks' results
  // are read (the repo-watcher); null means they never pass.
  Planner(PlannerStore* store, RepoSource* repo, LiveStateSource* live, Renderer* renderer, const Clock* clock,
          concurrency::ChangeSignal* notifier, PlannerMetrics* metrics, int plan_concurrency = 8,
          const ParseLimits& parse_limits = ParseLimits(), const SyncWindowLimits& window_limits = SyncWindowLimits(),
          const ApprovalPolicy* approvals = nullptr, CheckSource* checks = nullptr,
          const CheckRunner* check_runner = nullptr);

  // Applications and environments (Catalog).
  absl::StatusOr<v1::Application> CreateApplication(v1::Application app, const v1::Actor& actor) {
    return catalog_.CreateApplication(std::move(app), actor);
  }
  absl::StatusOr<v1::Application> GetApplication(const std::string& id) { return catalog_.GetApplication(id); }
  absl::StatusOr<v1::ListApplicationsResponse> ListApplications(const v1::ListApplicationsRequest& request) {
    return catalog_.ListApplications(request);
  }
  absl::StatusOr<v1::Application> UpdateApplication(const v1::Application& app, const google::protobuf::FieldMask& mask,
                                                    const v1::Actor& actor) {
    return catalog_.UpdateApplication(app, mask, actor);
  }
  absl::Status DeleteApplication(const std::string& id, const v1::Actor& actor) {
    return catalog_.DeleteApplication(id, actor);
  }
  absl::StatusOr<v1::Environment> CreateEnvironment(v1::Environment env, const v1::Actor& actor) {
    return catalog_.CreateEnvironment(std::move(env), actor);
  }
  absl::StatusOr<v1::Environment> GetEnvironment(const std::string& id) { return catalog_.GetEnvironment(id); }
  absl::StatusOr<v1::ListEnvironmentsResponse> ListEnvironments(const v1::ListEnvironmentsRequest& request) {
    return catalog_.ListEnvironments(request);
  }
  absl::StatusOr<v1::Environment> UpdateEnvironment(const v1::Environment& env, const google::protobuf::FieldMask& mask,
                                                    const v1::Actor& actor) {
    return catalog_.UpdateEnvironment(env, mask, actor);
  }
  absl::Status DeleteEnvironment(const std::string& id, const v1::Actor& actor) {
    return catalog_.DeleteEnvironment(id, actor);
  }

  // ferry.yaml (DeclarativeReconciler).
  absl::StatusOr<v1::ApplyDeclarativeConfigResponse> ApplyDeclarativeConfig(const v1::ApplyDeclarativeConfigRequest& request,
                                                                            const v1::Actor& actor) {
    return reconciler_.ApplyDeclarativeConfig(request, actor);
  }

  // Plans (PlanLifecycle, RevisionPlanner, PlanMaker).
  absl::StatusOr<v1::Plan> GetPlan(const std::string& id, v1::PlanView view) { return lifecycle_.GetPlan(id, view); }
  absl::StatusOr<v1::ListPlansResponse> ListPlans(const v1::ListPlansRequest& request) {
    return lifecycle_.ListPlans(request);
  }
  absl::StatusOr<v1::Plan> ApprovePlan(const std::string& id, const v1::Actor& actor, const std::string& comment) {
    return lifecycle_.ApprovePlan(id, actor, comment);
  }
  absl::StatusOr<v1::Plan> RejectPlan(const std::string& id, const v1::Actor& actor, const std::string& comment) {
    return lifecycle_.RejectPlan(id, actor, comment);
  }
  absl::StatusOr<v1::Plan> PreviewPlan(const v1::PreviewPlanRequest& request, const v1::Actor& actor) {
    return revisions_.PreviewPlan(request, actor);
  }
  absl::StatusOr<v1::PlanRevisionResponse> PlanRevision(const v1::PlanRevisionRequest& request) {
    return revisions_.PlanRevision(request);
  }
  absl::StatusOr<std::vector<v1::Plan>> RefreshApplication(const v1::RefreshApplicationRequest& request) {
    return revisions_.RefreshApplication(request);
  }
  absl::StatusOr<PlanOutcome> MakePlan(const PlanRequest& request) { return maker_.MakePlan(request); }

  // Hand-off to the deployer (PlanLifecycle).
  absl::StatusOr<std::vector<ReleasedPlan>> ReleasedAfter(const std::string& cursor, int limit,
                                                          int64_t max_bytes = std::numeric_limits<int64_t>::max()) {
    return lifecycle_.ReleasedAfter(cursor, limit, max_bytes);
  }
  absl::StatusOr<v1::AcknowledgePlanResponse> AcknowledgePlan(const v1::AcknowledgePlanRequest& request) {
    return lifecycle_.AcknowledgePlan(request);
  }
  absl::StatusOr<v1::Plan> ReportPlanResult(const v1::ReportPlanResultRequest& request) {
    return lifecycle_.ReportPlanResult(request);
  }
  absl::StatusOr<std::vector<absl::Status>> ReportPlanResults(const std::vector<v1::ReportPlanResultRequest>& requests) {
    return lifecycle_.ReportPlanResults(requests);
  }

  // Background work (RevisionPlanner, HoldEvaluator).
  absl::StatusOr<int> HandleRevision(const v1::Revision& revision) { return revisions_.HandleRevision(revision); }
  absl::StatusOr<int> ReevaluateHolds() { return holds_.ReevaluateHolds(); }
  absl::StatusOr<int> ReevaluateHoldsOf(const std::string& repository_id, const std::string& sha) {
    return holds_.ReevaluateHoldsOf(repository_id, sha);
  }
  absl::StatusOr<int> Promote(const v1::Plan& succeeded) { return revisions_.Promote(succeeded); }

  // The components, for the background loops (RevisionConsumer, HoldReleaser).
  RevisionPlanner* revision_planner() { return &revisions_; }
  HoldEvaluator* hold_evaluator() { return &holds_; }

 private:
  // In dependency order (members are built in declaration order).
  DefaultApprovalPolicy default_approvals_;
  const ApprovalPolicy* const approvals_;
  HoldEvaluator holds_;
  Catalog catalog_;
  PlanMaker maker_;
  RevisionGate gate_;
  DeclarativeReconciler reconciler_;
  RevisionPlanner revisions_;
  PlanLifecycle lifecycle_;
};

}  // namespace ferry::planner
