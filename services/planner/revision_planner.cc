#include "services/planner/revision_planner.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/concurrency/last_resort.h"
#include "common/concurrency/parallel_for.h"
#include "common/logging/logger.h"
#include "common/status/status_macros.h"
#include "re2/re2.h"
#include "services/planner/plan_view.h"
#include "services/planner/render_failure.h"
#include "services/planner/repo_path.h"
#include "services/planner/validation.h"

namespace ferry::planner {

bool IsInputError(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kUnimplemented:
      return true;
    default:
      return false;
  }
}

RevisionPlanner::RevisionPlanner(CatalogStore* catalog, PlanStore* plans, RenderStore* renders, RepoSource* repo,
                                 DeclarativeReconciler* reconciler, PlanMaker* maker, HoldEvaluator* holds,
                                 RevisionGate* gate, const Clock* clock, int plan_concurrency)
    : catalog_(catalog),
      plans_(plans),
      renders_(renders),
      repo_(repo),
      reconciler_(reconciler),
      maker_(maker),
      holds_(holds),
      gate_(gate),
      events_(clock),
      plan_concurrency_(std::max(1, plan_concurrency)) {}

absl::StatusOr<std::string> RevisionPlanner::ResolveRevision(const v1::Application& app, const v1::RevisionSelector& selector,
                                                     std::string* ref) {
  static const RE2 kSha("[0-9a-f]{40}");
  switch (selector.selector_case()) {
    case v1::RevisionSelector::kSha:
      if (!RE2::FullMatch(selector.sha(), kSha))
        return absl::InvalidArgumentError("revision.sha: must be a full 40-character lowercase hex commit sha");
      *ref = "";
      return selector.sha();
    case v1::RevisionSelector::kRef:
      if (selector.ref().empty()) return absl::InvalidArgumentError("revision.ref: is empty");
      *ref = FullRefName(selector.ref());
      return repo_->ResolveRef(app.repository_id(), *ref);
    default:
      *ref = app.ref();
      return repo_->ResolveRef(app.repository_id(), app.ref());
  }
}

absl::StatusOr<v1::Plan> RevisionPlanner::PreviewPlan(const v1::PreviewPlanRequest& request, const v1::Actor& actor) {
  ASSIGN_OR_RETURN(v1::Application app, catalog_->GetApplication(request.application_id()));
  if (request.environment_id().empty()) return absl::InvalidArgumentError("environment_id: is required");
  ASSIGN_OR_RETURN(v1::Environment env, catalog_->GetEnvironment(request.environment_id()));
  PlanRequest r;
  r.app = app;
  r.env = env;
  std::string ref;
  ASSIGN_OR_RETURN(std::string sha, ResolveRevision(app, request.revision(), &ref));
  RETURN_IF_ERROR(gate_->CheckSignaturePolicy({.call = "PreviewPlan",
                                               .actor = actor,
                                               .repository_id = app.repository_id(),
                                               .ref = ref,
                                               .sha = sha,
                                               .application_id = app.id(),
                                               .environment_id = env.id(),
                                               .path = ""}));
  r.target.set_repository_id(app.repository_id());
  r.target.set_ref(ref);
  r.target.set_sha(sha);
  r.trigger = v1::PLAN_TRIGGER_PREVIEW;
  r.preview = true;
  ASSIGN_OR_RETURN(PlanOutcome outcome, maker_->MakePlan(r));
  return *outcome.plan;
}

absl::StatusOr<v1::PlanRevisionResponse> RevisionPlanner::PlanRevision(const v1::PlanRevisionRequest& request) {
  v1::PlanTrigger trigger = request.trigger() == v1::PLAN_TRIGGER_UNSPECIFIED ? v1::PLAN_TRIGGER_EXPLICIT_REVISION
                                                                              : request.trigger();
  if (trigger != v1::PLAN_TRIGGER_EXPLICIT_REVISION && trigger != v1::PLAN_TRIGGER_ROLLBACK)
    return absl::InvalidArgumentError("trigger: must be PLAN_TRIGGER_EXPLICIT_REVISION or PLAN_TRIGGER_ROLLBACK");
  if (request.approve() && request.actor().id().empty())
    return absl::InvalidArgumentError("actor.id: is required when approve is set");
  ASSIGN_OR_RETURN(v1::Application app, catalog_->GetApplication(request.application_id()));
  if (std::find(app.environment_ids().begin(), app.environment_ids().end(), request.environment_id()) ==
      app.environment_ids().end())
    return absl::InvalidArgumentError(absl::StrCat("environment_id: application \"", app.id(),
                                                   "\" does not deploy to environment \"", request.environment_id(), "\""));
  ASSIGN_OR_RETURN(v1::Environment env, catalog_->GetEnvironment(request.environment_id()));
  std::string ref;
  ASSIGN_OR_RETURN(std::string sha, ResolveRevision(app, request.revision(), &ref));
  const RevisionGate::Use use{.call = "PlanRevision",
                              .actor = request.actor(),
                              .repository_id = app.repository_id(),
                              .ref = ref,
                              .sha = sha,
                              .application_id = app.id(),
                              .environment_id = env.id(),
                              .path = ""};
  if (trigger == v1::PLAN_TRIGGER_ROLLBACK) RETURN_IF_ERROR(gate_->CheckRollbackTarget(use));
  RETURN_IF_ERROR(gate_->CheckSignaturePolicy(use));
  if (trigger != v1::PLAN_TRIGGER_ROLLBACK) {
    ASSIGN_OR_RETURN(std::optional<std::string> gate, holds_->PromotionGate(app.id(), env, sha));
    if (gate) return absl::FailedPreconditionError(*gate);
  }
  PlanRequest r;
  r.app = app;
  r.env = env;
  r.target.set_repository_id(app.repository_id());
  r.target.set_ref(ref);
  r.target.set_sha(sha);
  r.trigger = trigger;
  r.requested_by = request.actor();
  r.comment = request.comment();
  r.approve = request.approve();
  r.rollback_to_deployment_id = request.rollback_to_deployment_id();
  absl::Status may_approve = r.approve ? maker_->CheckRequesterMayApprove(r) : absl::OkStatus();
  if (absl::IsPermissionDenied(may_approve)) {
    // The environment's separation of duties refused the requester's
    // approval: audited as a refusal, and nothing is planned.
    v1::Event e = events_.Make(v1::AUDIT_ACTION_ACCESS_DENIED, request.actor(),
                               absl::StrCat("approval refused: ", may_approve.message()),
                               absl::StrCat("approval-refused/", app.id(), "/", env.id(), "/", sha));
    e.mutable_subject()->set_application_id(app.id());
    e.mutable_subject()->set_environment_id(env.id());
    e.mutable_subject()->set_repository_id(app.repository_id());
    e.mutable_subject()->set_commit_sha(sha);
    (*e.mutable_details()->mutable_fields())["permission"].set_string_value("approve");
    absl::Status recorded = catalog_->RecordEvents({e});
    if (!recorded.ok())
      logging::Warn("recording a refused approval failed", {{"application", app.id()}, {"error", recorded.ToString()}});
  }
  RETURN_IF_ERROR(may_approve);
  ASSIGN_OR_RETURN(PlanOutcome outcome, maker_->MakePlan(r));
  v1::PlanRevisionResponse response;
  response.set_up_to_date(outcome.up_to_date);
  if (outcome.plan) *response.mutable_plan() = *outcome.plan;
  return response;
}

absl::StatusOr<std::vector<v1::Plan>> RevisionPlanner::RefreshApplication(const v1::RefreshApplicationRequest& request) {
  ASSIGN_OR_RETURN(v1::Application app, catalog_->GetApplication(request.application_id()));
  std::vector<v1::Plan> plans;
  ASSIGN_OR_RETURN(std::string sha, repo_->ResolveRef(app.repository_id(), app.ref()));
  for (const std::string& env_id : app.environment_ids()) {
    if (!request.environment_id().empty() && env_id != request.environment_id()) continue;
    ASSIGN_OR_RETURN(v1::Environment env, catalog_->GetEnvironment(env_id));
    ASSIGN_OR_RETURN(std::optional<std::string> gate, holds_->PromotionGate(app.id(), env, sha));
    if (gate) continue;  // planned when the revision succeeds upstream
    PlanRequest r;
    r.app = app;
    r.env = env;
    r.target.set_repository_id(app.repository_id());
    r.target.set_ref(app.ref());
    r.target.set_sha(sha);
    r.trigger = v1::PLAN_TRIGGER_REFRESH;
    r.requested_by = request.actor();
    r.hard = request.hard();
    ASSIGN_OR_RETURN(PlanOutcome outcome, maker_->MakePlan(r));
    if (outcome.plan) {
      ToBasicView(*outcome.plan);
      plans.push_back(std::move(*outcome.plan));
    }
  }
  return plans;
}

absl::StatusOr<int> RevisionPlanner::PlanApplications(const std::set<std::string>& app_ids, const v1::CommitRef& target,
                                              v1::PlanTrigger trigger,
                                              const std::map<std::string, std::vector<std::string>>* input_paths) {
  // The applications asked for and, transitively, what they depend on: the
  // levels below need nothing else (issue #23: reading all 10,000
  // applications for each revision of each of 10,000 repositories made one
  // commit per repository quadratic).
  std::map<std::string, v1::Application> graph;
  std::set<std::string> asked, want = app_ids;
  while (!want.empty()) {
    asked.insert(want.begin(), want.end());
    ASSIGN_OR_RETURN(std::vector<v1::Application> got, catalog_->GetApplications(want));
    want.clear();
    for (v1::Application& a : got) {
      for (const std::string& dep : a.depends_on()) {
        if (!asked.count(dep)) want.insert(dep);
      }
      std::string id = a.id();
      graph[id] = std::move(a);
    }
  }
  ASSIGN_OR_RETURN(std::vector<v1::Environment> envs, catalog_->ListEnvironments());
  std::map<std::string, v1::Environment> env_by_id;
  for (auto& e : envs) env_by_id[e.id()] = std::move(e);
  // Level 0 has no dependency among the applications; level n depends on
  // lower levels only. Each level is planned after the one below it, its
  // (application, environment) pairs in parallel.
  std::map<std::string, size_t> level;
  std::vector<std::vector<PlanRequest>> levels;
  std::map<std::pair<std::string, std::string>, std::string> tips;  // (repo, ref) -> sha
  for (const std::string& id : TopologicalOrder(graph)) {
    const v1::Application& app = graph[id];
    size_t depth = 0;
    for (const std::string& dep : app.depends_on()) {
      if (auto it = level.find(dep); it != level.end()) depth = std::max(depth, it->second + 1);
    }
    level[id] = depth;
    if (!app_ids.count(id)) continue;
    v1::CommitRef commit = target;
    if (commit.sha().empty()) {
      auto key = std::make_pair(app.repository_id(), app.ref());
      if (!tips.count(key)) {
        absl::StatusOr<std::string> tip = repo_->ResolveRef(app.repository_id(), app.ref());
        if (!tip.ok()) {
          logging::Warn("cannot resolve ref; application not planned",
                        {{"application", id}, {"ref", app.ref()}, {"error", tip.status().ToString()}});
          continue;
        }
        tips[key] = *tip;
      }
      commit.set_repository_id(app.repository_id());
      commit.set_ref(app.ref());
      commit.set_sha(tips[key]);
    }
    for (const std::string& env_id : app.environment_ids()) {
      if (!env_by_id.count(env_id)) continue;  // deleted meanwhile
      PlanRequest r;
      r.app = app;
      r.env = env_by_id[env_id];
      r.target = commit;
      r.trigger = trigger;
      r.requested_by = SystemActor();
      r.dedupe = true;
      if (input_paths != nullptr) {
        if (auto it = input_paths->find(id); it != input_paths->end()) r.input_paths = it->second;
      }
      if (levels.size() <= depth) levels.resize(depth + 1);
      levels[depth].push_back(std::move(r));
    }
  }
  std::atomic<int> made{0};
  for (const std::vector<PlanRequest>& requests : levels) {
    // One automatic plan per (application, environment, commit,
    // definitions): a revision replayed after a restart, or already planned
    // by a refresh, is skipped. The level's pairs are looked up at once (one
    // read, not one per application: issue #23); one planned meanwhile is
    // refused by its insert (ALREADY_EXISTS, below).
    std::vector<PlanStore::PlanKey> keys;
    keys.reserve(requests.size());
    for (const PlanRequest& r : requests)
      keys.push_back({r.app.id(), r.env.id(), r.target.sha(), DefinitionKey(r.app, r.env)});
    ASSIGN_OR_RETURN(std::vector<bool> planned, plans_->HavePlansFor(keys));
    absl::Status failed = concurrency::ParallelFor(requests.size(), plan_concurrency_, [&](size_t i) -> absl::Status {
      const PlanRequest& r = requests[i];
      if (planned[i]) return absl::OkStatus();
      // promoteFrom: a revision is planned here only once it was deployed
      // healthy upstream; ReportPlanResult plans it then.
      ASSIGN_OR_RETURN(std::optional<std::string> gate, holds_->PromotionGate(r.app.id(), r.env, r.target.sha()));
      if (gate) return absl::OkStatus();
      bool threw = false;
      absl::StatusOr<PlanOutcome> outcome = concurrency::RunGuarded(
          absl::StrCat("planning ", r.app.id(), " in ", r.env.id(), " at ", ShortSha(r.target.sha())),
          [&] { return maker_->MakePlan(r); }, &threw);
      if (absl::IsAlreadyExists(outcome.status())) return absl::OkStatus();  // planned concurrently
      // Poison isolation: an application whose inputs are bad (or whose
      // planning threw) fails alone, as a FAILED plan with the reason; the
      // other applications of the commit are planned.
      if (!outcome.ok() && (threw || IsInputError(outcome.status()))) {
        absl::Status recorded = PersistFailedPlan(r, outcome.status());
        if (absl::IsAlreadyExists(recorded)) return absl::OkStatus();
        if (!recorded.ok()) return recorded;
        ++made;
        return absl::OkStatus();
      }
      if (!outcome.ok()) return outcome.status();
      if (outcome->plan) ++made;
      return absl::OkStatus();
    });
    // Plans of this level are kept; dependants wait for a retry.
    if (!failed.ok()) return failed;
  }
  return made.load();
}

absl::Status RevisionPlanner::PersistFailedPlan(const PlanRequest& request, const absl::Status& failure) {
  logging::Warn("application not planned: its inputs failed; recorded as a failed plan",
                {{"application", request.app.id()}, {"environment", request.env.id()},
                 {"commit", request.target.sha()}, {"error", failure.ToString()}});
  PlanRequest once = request;
  once.dedupe = true;  // one failed plan per commit and definitions, however often it is retried
  return maker_->PersistFailedPlan(once, failure, /*renderer_version=*/"").status();
}

absl::StatusOr<int> RevisionPlanner::Promote(const v1::Plan& succeeded) { return PromoteAll({succeeded}); }

absl::StatusOr<int> RevisionPlanner::PromoteAll(const std::vector<v1::Plan>& succeeded) {
  auto promotable = [](const v1::Plan& p) {
    return p.trigger() == v1::PLAN_TRIGGER_NEW_REVISION || p.trigger() == v1::PLAN_TRIGGER_REFRESH;
  };
  if (std::none_of(succeeded.begin(), succeeded.end(), promotable)) return 0;
  ASSIGN_OR_RETURN(std::vector<v1::Environment> envs, catalog_->ListEnvironments());
  if (succeeded.size() == 1) return PromoteIn(succeeded.front(), envs);
  int made = 0;
  for (const v1::Plan& plan : succeeded) {
    absl::StatusOr<int> one = PromoteIn(plan, envs);
    if (!one.ok()) {
      logging::Warn("planning the promotion failed", {{"plan", plan.id()}, {"error", one.status().ToString()}});
      continue;
    }
    made += *one;
  }
  return made;
}

absl::StatusOr<int> RevisionPlanner::PromoteIn(const v1::Plan& succeeded, const std::vector<v1::Environment>& envs) {
  if (succeeded.trigger() != v1::PLAN_TRIGGER_NEW_REVISION && succeeded.trigger() != v1::PLAN_TRIGGER_REFRESH) return 0;
  // Most successes are in an environment nothing promotes from: no
  // application read for them (one per deployment report; issue #23).
  if (std::none_of(envs.begin(), envs.end(),
                   [&](const v1::Environment& env) { return env.promote_from() == succeeded.environment_id(); }))
    return 0;
  absl::StatusOr<v1::Application> app = catalog_->GetApplication(succeeded.application_id());
  if (absl::IsNotFound(app.status())) return 0;
  if (!app.ok()) return app.status();
  if (!app->sync_policy().automated()) return 0;
  int made = 0;
  for (const v1::Environment& env : envs) {
    if (env.promote_from() != succeeded.environment_id()) continue;
    if (std::find(app->environment_ids().begin(), app->environment_ids().end(), env.id()) == app->environment_ids().end())
      continue;
    PlanRequest r;
    r.app = *app;
    r.env = env;
    r.target = succeeded.target_revision();
    r.trigger = v1::PLAN_TRIGGER_NEW_REVISION;
    r.requested_by = SystemActor();
    r.dedupe = true;
    absl::StatusOr<PlanOutcome> outcome = maker_->MakePlan(r);
    if (absl::IsAlreadyExists(outcome.status())) continue;
    if (!outcome.ok()) return outcome.status();
    if (outcome->plan) ++made;
  }
  return made;
}

absl::StatusOr<int> RevisionPlanner::HandleRevision(const v1::Revision& revision) {
  if (revision.rejected() || revision.ref_deleted() || revision.sha().empty()) return 0;
  // Kept for every plan of this commit, now or later (separation of duties:
  // distinct_from_author).
  if (!revision.author().name().empty() || !revision.author().email().empty()) {
    v1::CommitAuthor author;
    author.set_name(revision.author().name());
    author.set_email(revision.author().email());
    RETURN_IF_ERROR(plans_->RecordCommitAuthor(revision.repository_id(), revision.sha(), author));
    maker_->RememberAuthor(revision.repository_id(), revision.sha(), author);
  }
  auto touched = [&](const std::string& root) {
    if (revision.all_paths_changed()) return true;
    for (const auto& p : revision.changed_paths())
      if (IsUnderRepoPath(p, root) || IsUnderRepoPath(root, p)) return true;
    return false;
  };
  std::set<std::string> affected;
  ASSIGN_OR_RETURN(std::vector<DeclarationSourceRecord> sources, catalog_->ListDeclarationSources());
  for (const auto& rec : sources) {
    if (rec.source.repository_id() != revision.repository_id() || rec.source.ref() != revision.ref()) continue;
    if (!touched(rec.source.path())) continue;
    v1::ApplyDeclarativeConfigResponse ignored;
    absl::StatusOr<std::set<std::string>> changed = reconciler_->Reconcile(rec.source, revision.sha(), false, SystemActor(), &ignored);
    if (!changed.ok()) {
      if (!absl::IsInvalidArgument(changed.status()) && !absl::IsFailedPrecondition(changed.status()))
        return changed.status();
      logging::Warn("ferry.yaml rejected; previous configuration kept",
                    {{"source", rec.key}, {"commit", revision.sha()}, {"error", changed.status().ToString()}});
      // Audited once per (file, commit): who pushed a configuration Ferry refused.
      v1::Event e;
      e.set_action(v1::AUDIT_ACTION_RENDER_FAILED);
      *e.mutable_actor() = SystemActor();
      e.set_message(absl::StrCat("declarative configuration refused, previous configuration kept: ",
                                 changed.status().message()));
      *e.mutable_time() = events_.Now();
      e.set_idempotency_key(absl::StrCat("declarative-refused/", rec.key, "/", revision.sha()));
      e.mutable_subject()->set_repository_id(revision.repository_id());
      e.mutable_subject()->set_ref(revision.ref());
      e.mutable_subject()->set_commit_sha(revision.sha());
      (*e.mutable_details()->mutable_fields())["path"].set_string_value(rec.source.path());
      absl::Status recorded = catalog_->RecordEvents({e});
      if (!recorded.ok() && !absl::IsAlreadyExists(recorded)) return recorded;
      continue;
    }
    affected.insert(changed->begin(), changed->end());
  }
  // Only the applications deploying from this repository and ref, not every
  // application: a revision's cost must not grow with the applications of
  // other repositories. When it changed a few paths, only those of them its
  // paths can touch (an index lookup: a commit touching one application of
  // 10,000 reads one, issue #23); each is re-checked exactly below.
  std::vector<v1::Application> apps;
  std::map<std::string, std::vector<std::string>> inputs;
  const bool indexed = !revision.all_paths_changed() && revision.changed_paths_size() <= kIndexedChangedPaths;
  if (indexed) {
    ASSIGN_OR_RETURN(std::vector<CatalogStore::ApplicationRoots> candidates,
                     catalog_->ListApplicationsTouchedBy(
                         revision.repository_id(), revision.ref(),
                         std::vector<std::string>(revision.changed_paths().begin(), revision.changed_paths().end())));
    for (auto& c : candidates) {
      inputs[c.app.id()] = std::move(c.input_paths);
      apps.push_back(std::move(c.app));
    }
  } else {
    ASSIGN_OR_RETURN(apps, catalog_->ListApplicationsOf(revision.repository_id(), revision.ref()));
    ASSIGN_OR_RETURN(inputs, renders_->ListInputPathsOf(revision.repository_id(), revision.ref()));
  }
  std::set<std::string> elsewhere;  // (re)declared here, deployed from another repository or ref
  std::set<std::string> here;
  for (const auto& app : apps) here.insert(app.id());
  std::set<std::string> not_read;  // affected by the ferry.yaml, not among `apps`
  for (const std::string& id : affected) {
    if (!here.count(id)) not_read.insert(id);
  }
  if (!not_read.empty()) {
    ASSIGN_OR_RETURN(std::vector<v1::Application> others, catalog_->GetApplications(not_read));
    for (const auto& app : others) {
      if (app.repository_id() == revision.repository_id() && app.ref() == revision.ref()) {
        // Deployed from here, (re)declared by this revision, none of its
        // paths changed: planned when automated, as if read above.
        if (!app.sync_policy().automated()) affected.erase(app.id());
        continue;
      }
      if (affected.erase(app.id()) && app.sync_policy().automated()) elsewhere.insert(app.id());
    }
  }
  for (const auto& app : apps) {
    if (app.repository_id() != revision.repository_id() || app.ref() != revision.ref()) continue;
    if (!app.sync_policy().automated()) {
      affected.erase(app.id());
      continue;
    }
    bool hit = touched(app.path());
    for (const auto& root : inputs[app.id()]) hit = hit || touched(root);
    if (hit) affected.insert(app.id());
  }
  v1::CommitRef target;
  target.set_repository_id(revision.repository_id());
  target.set_ref(revision.ref());
  target.set_sha(revision.sha());
  // The input paths read above are those of `apps`: an application the
  // ferry.yaml affected beyond them reads its own.
  ASSIGN_OR_RETURN(int made, PlanApplications(affected, target, v1::PLAN_TRIGGER_NEW_REVISION, &inputs));
  if (!elsewhere.empty()) {
    ASSIGN_OR_RETURN(int more, PlanApplications(elsewhere, v1::CommitRef(), v1::PLAN_TRIGGER_REFRESH));
    made += more;
  }
  return made;
}

}  // namespace ferry::planner
