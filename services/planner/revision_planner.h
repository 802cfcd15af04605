#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock/clock.h"
#include "ferry/v1/planner.pb.h"
#include "ferry/v1/repo_watcher.pb.h"
#include "services/planner/declarative_reconciler.h"
#include "services/planner/hold_evaluator.h"
#include "services/planner/plan_maker.h"
#include "services/planner/planner_events.h"
#include "services/planner/planner_store.h"
#include "services/planner/repo_source.h"
#include "services/planner/revision_gate.h"

namespace ferry::planner {

// One job: deciding which (application, environment, commit) to plan and
// asking PlanMaker for it: revisions from the repo-watcher (reconciling the
// ferry.yaml files they touch first), explicit revisions and rollbacks,
// previews, refreshes, promotion after success, in dependsOn order.
// A revision a request names (PlanRevision, PreviewPlan) passes the
// RevisionGate first. Holds no state of its own; thread-safe.
class RevisionPlanner {
 public:
  // `plan_concurrency` bounds how many plans of one commit are made at once
  // (applications that do not depend on each other are planned in parallel:
  // their peer calls and durable commits overlap).
  RevisionPlanner(CatalogStore* catalog, PlanStore* plans, RenderStore* renders, RepoSource* repo,
                  DeclarativeReconciler* reconciler, PlanMaker* maker, HoldEvaluator* holds, RevisionGate* gate,
                  const Clock* clock, int plan_concurrency = 8);

  // Consumes one revision from the repo-watcher: reconciles ferry.yaml files
  // it touches, then plans every automated application whose inputs it
  // changed, in dependsOn order. Idempotent per (application, environment,
  // commit). Returns the number of plans made.
  absl::StatusOr<int> HandleRevision(const v1::Revision& revision);
  // Up to this many changed paths, a revision reads only the applications
  // they can touch (CatalogStore::ListApplicationsTouchedBy); beyond, every
  // application of its repository and ref.
  static constexpr int kIndexedChangedPaths = 512;

  // Plans `app_ids` (dependencies first) at `target`, or at the tip of each
  // application's ref when target.sha is empty. An application already
  // planned at that commit with the same definitions is skipped.
  // `input_paths`, when given, holds the stored input paths of (some of) the
  // applications, read by the caller (PlanRequest::input_paths).
  absl::StatusOr<int> PlanApplications(const std::set<std::string>& app_ids, const v1::CommitRef& target,
                                       v1::PlanTrigger trigger,
                                       const std::map<std::string, std::vector<std::string>>* input_paths = nullptr);

  // Both refuse (FAILED_PRECONDITION, audited) a commit the repository's
  // signature policy does not accept; PlanRevision also a ROLLBACK to a
  // revision never deployed in that environment. `actor` is the caller.
  absl::StatusOr<v1::Plan> PreviewPlan(const v1::PreviewPlanRequest& request, const v1::Actor& actor);
  absl::StatusOr<v1::PlanRevisionResponse> PlanRevision(const v1::PlanRevisionRequest& request);
  absl::StatusOr<std::vector<v1::Plan>> RefreshApplication(const v1::RefreshApplicationRequest& request);

  // After `succeeded` (an automatic plan) reached SUCCEEDED: plans its
  // revision in every environment that promotes from its environment.
  absl::StatusOr<int> Promote(const v1::Plan& succeeded);
  // Promote of each plan, the environments read once for them all (a
  // deployer reports its results in batches: issue #23). One plan's failure
  // is logged and the others promoted; an error only when nothing could be.
  absl::StatusOr<int> PromoteAll(const std::vector<v1::Plan>& succeeded);

 private:
  absl::StatusOr<int> PromoteIn(const v1::Plan& succeeded, const std::vector<v1::Environment>& envs);
  // Records `request` as a FAILED plan with `failure` as its reason and a
  // RENDER_FAILED audit event (ALREADY_EXISTS when the commit has its plan).
  absl::Status PersistFailedPlan(const PlanRequest& request, const absl::Status& failure);
  absl::StatusOr<std::string> ResolveRevision(const v1::Application& app, const v1::RevisionSelector& selector,
                                              std::string* ref);

  CatalogStore* catalog_;
  PlanStore* plans_;
  RenderStore* renders_;
  RepoSource* repo_;
  DeclarativeReconciler* reconciler_;
  PlanMaker* maker_;
  HoldEvaluator* holds_;
  RevisionGate* gate_;
  const PlannerEvents events_;
  const int plan_concurrency_;
};

// How a failure of planning is treated (RevisionConsumer, PlanApplications).
// An input error: the same input fails again (INVALID_ARGUMENT,
// FAILED_PRECONDITION, OUT_OF_RANGE, RESOURCE_EXHAUSTED, NOT_FOUND,
// DATA_LOSS, UNIMPLEMENTED); the item is failed and left behind.
bool IsInputError(const absl::Status& status);
// Transient errors (retried, never counted) are status::IsTransient.

}  // namespace ferry::planner
