#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/clock/clock.h"
#include "common/concurrency/change_signal.h"
#include "common/concurrency/mutex.h"
#include "ferry/v1/planner.pb.h"
#include "services/planner/approval_policy.h"
#include "services/planner/check_runner.h"
#include "services/planner/hold_evaluator.h"
#include "services/planner/live_state_source.h"
#include "services/planner/planner_events.h"
#include "services/planner/planner_metrics.h"
#include "services/planner/planner_store.h"
#include "services/planner/renderer.h"
#include "services/planner/repo_source.h"

namespace ferry::planner {

// What to plan: one application in one environment at one commit.
struct PlanRequest {
  v1::Application app;
  v1::Environment env;
  v1::CommitRef target;  // repository, ref and sha to deploy
  v1::PlanTrigger trigger = v1::PLAN_TRIGGER_NEW_REVISION;
  v1::Actor requested_by;
  std::string comment;
  // Approve as requested_by regardless of the approval policy: one approval
  // under the environment's separation-of-duties rule (ApprovalPolicy), which
  // may refuse it (PERMISSION_DENIED) or require more (the plan stays PENDING).
  bool approve = false;
  bool preview = false;  // persist nothing; return the plan
  bool hard = false;     // bypass the render cache
  bool dedupe = false;   // make nothing when (app, env, commit, definitions) already has a plan
  std::string rollback_to_deployment_id;
  // The application's input paths as stored (RenderStore::GetInputPaths),
  // when the caller read them already (a revision reads them for all its
  // applications at once: issue #23); unset: MakePlan reads them.
  std::optional<std::vector<std::string>> input_paths;
};

// The result of planning: a plan, or none because nothing differs.
struct PlanOutcome {
  std::optional<v1::Plan> plan;
  bool up_to_date = false;
};

// One job: making one plan: render (through the render cache), diff against
// live state (or the last applied plan when the deployer cannot answer),
// decide approval and hold, and persist it with its audit events (older open
// plans of the pair are superseded). Its only state is the authors of the
// commits it planned (a commit's author never changes); thread-safe.
class PlanMaker {
 public:
  PlanMaker(RenderStore* renders, PlanStore* plans, RepoSource* repo, LiveStateSource* live, Renderer* renderer,
            HoldEvaluator* holds, const ApprovalPolicy* approvals, const Clock* clock,
            concurrency::ChangeSignal* notifier, PlannerMetrics* metrics, const CheckRunner* check_runner = nullptr)
      : renders_(renders),
        plans_(plans),
        repo_(repo),
        live_(live),
        renderer_(renderer),
        holds_(holds),
        approvals_(approvals),
        events_(clock),
        notifier_(notifier),
        metrics_(metrics),
        check_runner_(check_runner) {}

  // Renders, diffs and (unless preview) persists one plan, with the target
  // commit's author when the planner recorded it (Plan.target_author).
  // Before its holds are decided the application's checks for the
  // environment run over it (CheckRunner; not for previews and rollbacks),
  // their runs attached (Plan.check_runs) and each audited
  // (PLAN_CHECK_RAN); the required-checks gate then judges them.
  // Render failures become FAILED plans; other errors are returned and
  // nothing is persisted (PERMISSION_DENIED, before rendering, when
  // request.approve is refused by the environment's rule).
  // With request.dedupe, ALREADY_EXISTS when the pair already has a plan for
  // the commit and definitions.
  absl::StatusOr<PlanOutcome> MakePlan(const PlanRequest& request);

  // Whether request.requested_by may approve the plan `request` asks for
  // (request.approve) under the environment's separation-of-duties rule:
  // PERMISSION_DENIED naming the rule when not. MakePlan checks it first.
  absl::Status CheckRequesterMayApprove(const PlanRequest& request);

  // Keeps `author` as the author of `sha` in `repository_id`, as just
  // recorded from the revision stream: the plans of that commit then read
  // nothing to learn it, however many run at once (issue #23).
  void RememberAuthor(const std::string& repository_id, const std::string& sha, const v1::CommitAuthor& author);

  // Records `request` as a FAILED plan with `failure` (a RenderFailure's
  // path and line when it has them) as its reason, and a RENDER_FAILED audit
  // event. With request.dedupe, ALREADY_EXISTS when the pair already has a
  // plan for the commit and definitions.
  absl::StatusOr<v1::Plan> PersistFailedPlan(const PlanRequest& request, const absl::Status& failure,
                                             const std::string& renderer_version);

 private:
  // The host target resolves ConfigFile `spec.contentFrom.file` (relative to
  // the manifest's folder) into `spec.content` before applying; the diff
  // compares the same resolved form, so the file's content is what counts.
  absl::StatusOr<std::vector<v1::Manifest>> ResolveContentFrom(const v1::Application& app, const std::string& sha,
                                                               const std::vector<v1::Manifest>& manifests);
  // The author of the target commit as recorded from the revision stream;
  // empty when unknown.
  absl::StatusOr<v1::CommitAuthor> AuthorOf(const v1::CommitRef& target);
  absl::StatusOr<v1::LiveState> ObserveOrLastApplied(const v1::Application& app, const v1::Environment& env,
                                                     const std::vector<v1::Manifest>& desired);

  RenderStore* renders_;
  PlanStore* plans_;
  RepoSource* repo_;
  LiveStateSource* live_;
  Renderer* renderer_;
  HoldEvaluator* holds_;
  const ApprovalPolicy* approvals_;
  const PlannerEvents events_;
  concurrency::ChangeSignal* notifier_;
  PlannerMetrics* metrics_;
  const CheckRunner* check_runner_;  // may be null: checks are then recorded as failed, not run
  // Authors read, by (repository, sha): a commit touching 10,000
  // applications reads its author once, not once per plan (issue #23).
  // Only known authors are kept; forgotten all at once past a few hundred.
  ferry::Mutex authors_mu_;
  std::map<std::pair<std::string, std::string>, v1::CommitAuthor> authors_ ABSL_GUARDED_BY(authors_mu_);
};

// Hash of the application and environment definitions a plan is made from.
std::string DefinitionKey(const v1::Application& app, const v1::Environment& env);

}  // namespace ferry::planner
