#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <google/protobuf/field_mask.pb.h>

#include "absl/status/statusor.h"
#include "common/clock/clock.h"
#include "ferry/v1/planner.pb.h"
#include "services/planner/live_state_source.h"
#include "services/planner/plan_notifier.h"
#include "services/planner/planner_metrics.h"
#include "services/planner/planner_store.h"
#include "services/planner/renderer.h"
#include "services/planner/repo_source.h"
#include "services/planner/sync_window.h"

namespace ferry::planner {

// What to plan: one application in one environment at one commit.
struct PlanRequest {
  v1::Application app;
  v1::Environment env;
  v1::CommitRef target;  // repository, ref and sha to deploy
  v1::PlanTrigger trigger = v1::PLAN_TRIGGER_NEW_REVISION;
  v1::Actor requested_by;
  std::string comment;
  bool approve = false;  // approve as requested_by regardless of the approval policy
  bool preview = false;  // persist nothing; return the plan
  bool hard = false;     // bypass the render cache
  bool dedupe = false;   // make nothing when (app, env, commit, definitions) already has a plan
  std::string rollback_to_deployment_id;
};

// The result of planning: a plan, or none because nothing differs.
struct PlanOutcome {
  std::optional<v1::Plan> plan;
  bool up_to_date = false;
};

// The planner's domain logic: applications and environments (API and
// ferry.yaml), rendering through the cache, diffs against live state, plans
// and their lifecycle (approval, sync windows, promotion gates, dependsOn)
// and the durable hand-off to the deployer. No gRPC, no SQL. Thread-safe.
//
// Status codes: INVALID_ARGUMENT names the field; NOT_FOUND for unknown ids;
// FAILED_PRECONDITION for a state that forbids the call (declared in Git,
// plan not pending, promotion gate naming the environment); UNAVAILABLE when
// a peer or the database is down (retry).
class Planner {
 public:
  // `plan_concurrency` bounds how many plans of one commit are made at once
  // (applications that do not depend on each other are planned in parallel:
  // their peer calls and durable commits overlap).
  Planner(PlannerStore* store, RepoSource* repo, LiveStateSource* live, Renderer* renderer, const Clock* clock,
          PlanNotifier* notifier, PlannerMetrics* metrics, int plan_concurrency = 8);

  // Applications and environments.
  absl::StatusOr<v1::Application> CreateApplication(v1::Application app, const v1::Actor& actor);
  absl::StatusOr<v1::Application> GetApplication(const std::string& id);
  absl::StatusOr<v1::ListApplicationsResponse> ListApplications(const v1::ListApplicationsRequest& request);
  absl::StatusOr<v1::Application> UpdateApplication(const v1::Application& app, const google::protobuf::FieldMask& mask,
                                                    const v1::Actor& actor);
  absl::Status DeleteApplication(const std::string& id, const v1::Actor& actor);
  absl::StatusOr<v1::Environment> CreateEnvironment(v1::Environment env, const v1::Actor& actor);
  absl::StatusOr<v1::Environment> GetEnvironment(const std::string& id);
  absl::StatusOr<v1::ListEnvironmentsResponse> ListEnvironments(const v1::ListEnvironmentsRequest& request);
  absl::StatusOr<v1::Environment> UpdateEnvironment(const v1::Environment& env, const google::protobuf::FieldMask& mask,
                                                    const v1::Actor& actor);
  absl::Status DeleteEnvironment(const std::string& id, const v1::Actor& actor);

  // Reads a ferry.yaml at a commit and reconciles applications and
  // environments declared by it (create, update, delete), atomically.
  // Applications that changed are re-planned unless dry_run.
  absl::StatusOr<v1::ApplyDeclarativeConfigResponse> ApplyDeclarativeConfig(const v1::ApplyDeclarativeConfigRequest& request,
                                                                            const v1::Actor& actor);

  // Plans.
  absl::StatusOr<v1::Plan> GetPlan(const std::string& id, v1::PlanView view);
  absl::StatusOr<v1::ListPlansResponse> ListPlans(const v1::ListPlansRequest& request);
  absl::StatusOr<v1::Plan> ApprovePlan(const std::string& id, const v1::Actor& actor, const std::string& comment);
  absl::StatusOr<v1::Plan> RejectPlan(const std::string& id, const v1::Actor& actor, const std::string& comment);
  absl::StatusOr<v1::Plan> PreviewPlan(const v1::PreviewPlanRequest& request);
  absl::StatusOr<v1::PlanRevisionResponse> PlanRevision(const v1::PlanRevisionRequest& request);
  absl::StatusOr<std::vector<v1::Plan>> RefreshApplication(const v1::RefreshApplicationRequest& request);

  // Renders, diffs and (unless preview) persists one plan. Render failures
  // become FAILED plans; other errors are returned and nothing is persisted.
  absl::StatusOr<PlanOutcome> MakePlan(const PlanRequest& request);

  // Hand-off to the deployer.
  // Released plans after `cursor` ("" = oldest unfinished); at most `limit`.
  absl::StatusOr<std::vector<ReleasedPlan>> ReleasedAfter(const std::string& cursor, int limit);
  absl::StatusOr<v1::AcknowledgePlanResponse> AcknowledgePlan(const v1::AcknowledgePlanRequest& request);
  absl::StatusOr<v1::Plan> ReportPlanResult(const v1::ReportPlanResultRequest& request);

  // Consumes one revision from the repo-watcher: reconciles ferry.yaml files
  // it touches, then plans every automated application whose inputs it
  // changed, in dependsOn order. Idempotent per (application, environment,
  // commit). Returns the number of plans made.
  absl::StatusOr<int> HandleRevision(const v1::Revision& revision);

  // Re-evaluates the holds of unreleased plans (windows, promotion,
  // dependencies) and releases those whose gates opened. Returns how many
  // were released.
  absl::StatusOr<int> ReevaluateHolds();

  // After `succeeded` (an automatic plan) reached SUCCEEDED: plans its
  // revision in every environment that promotes from its environment.
  absl::StatusOr<int> Promote(const v1::Plan& succeeded);

 private:
  // One attempt of UpdateApplication / UpdateEnvironment: ABORTED when the
  // stored spec changed between the read and the write.
  absl::StatusOr<v1::Application> MergeApplicationUpdate(const v1::Application& update,
                                                         const google::protobuf::FieldMask& mask,
                                                         const v1::Actor& actor);
  absl::StatusOr<v1::Environment> MergeEnvironmentUpdate(const v1::Environment& update,
                                                         const google::protobuf::FieldMask& mask,
                                                         const v1::Actor& actor);
  struct Hold {
    v1::HoldReason reason = v1::HOLD_REASON_UNSPECIFIED;
    std::string message;
  };
  // `windows` optionally caches sync-window decisions by environment id.
  absl::StatusOr<Hold> ComputeHold(const v1::Plan& plan, const v1::Environment& env,
                                   std::map<std::string, WindowDecision>* windows = nullptr);
  // The host target resolves ConfigFile `spec.contentFrom.file` (relative to
  // the manifest's folder) into `spec.content` before applying; the diff
  // compares the same resolved form, so the file's content is what counts.
  absl::StatusOr<std::vector<v1::Manifest>> ResolveContentFrom(const v1::Application& app, const std::string& sha,
                                                               const std::vector<v1::Manifest>& manifests);
  absl::StatusOr<std::optional<std::string>> PromotionGate(const std::string& app, const v1::Environment& env,
                                                           const std::string& sha);
  absl::StatusOr<std::string> ResolveRevision(const v1::Application& app, const v1::RevisionSelector& selector,
                                              std::string* ref);
  absl::StatusOr<v1::LiveState> ObserveOrLastApplied(const v1::Application& app, const v1::Environment& env,
                                                     const std::vector<v1::Manifest>& desired);
  absl::StatusOr<v1::Plan> PersistFailedPlan(const PlanRequest& request, const absl::Status& failure,
                                             const std::string& renderer_version);
  absl::StatusOr<std::set<std::string>> Reconcile(const v1::DeclarationSource& source, const std::string& commit,
                                                  bool dry_run, const v1::Actor& actor,
                                                  v1::ApplyDeclarativeConfigResponse* response);
  // Plans `app_ids` (dependencies first) at `target`, or at the tip of each
  // application's ref when target.sha is empty. An application already
  // planned at that commit with the same definitions is skipped.
  absl::StatusOr<int> PlanApplications(const std::set<std::string>& app_ids, const v1::CommitRef& target,
                                       v1::PlanTrigger trigger);
  v1::Event MakeEvent(int action, const v1::Actor& actor, const std::string& message, const std::string& key);
  // Closes an open plan of a deleted application (REJECTED, "application
  // deleted") and returns its audit event.
  std::vector<v1::Event> RejectForDeletion(v1::Plan& plan, const v1::Actor& actor);
  google::protobuf::Timestamp Now() const;

  PlannerStore* store_;
  RepoSource* repo_;
  LiveStateSource* live_;
  Renderer* renderer_;
  const Clock* clock_;
  PlanNotifier* notifier_;
  PlannerMetrics* metrics_;
  const int plan_concurrency_;
};

// Hash of the application and environment definitions a plan is made from.
std::string DefinitionKey(const v1::Application& app, const v1::Environment& env);

// The ferry system actor ("ferry").
v1::Actor SystemActor();

// Strips manifests, json_patch and unified_diff (PLAN_VIEW_BASIC).
void ToBasicView(v1::Plan& plan);

}  // namespace ferry::planner
