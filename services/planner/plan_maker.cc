#include "services/planner/plan_maker.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <algorithm>
#include <optional>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/crypto/sha256.h"
#include "common/json/json.h"
#include "common/logging/logger.h"
#include "common/status/status_macros.h"
#include "common/text/utf8.h"
#include "services/planner/differ.h"
#include "services/planner/manifest_parser.h"
#include "services/planner/render_failure.h"
#include "services/planner/terraform_plans.h"
#include "services/planner/repo_path.h"
#include "services/planner/separation_of_duties.h"

namespace ferry::planner {
namespace {

using nlohmann::json;

std::string MethodLabel(v1::RenderMethod method) {
  switch (method) {
    case v1::RENDER_METHOD_PLAIN:
      return "plain";
    case v1::RENDER_METHOD_KUSTOMIZE:
      return "kustomize";
    case v1::RENDER_METHOD_HELM:
      return "helm";
    case v1::RENDER_METHOD_ANSIBLE:
      return "ansible";
    case v1::RENDER_METHOD_TERRAFORM:
      return "terraform";
    default:
      return "unknown";
  }
}

// The secretRef objects of a host object that name an encrypted file in
// Git: Process spec.env[*].valueFrom.secretRef, ConfigFile
// spec.contentFrom.secretRef.
std::vector<json*> EncryptedSecretRefs(json& object) {
  std::vector<json*> out;
  if (!object.is_object() || !object.contains("spec") || !object["spec"].is_object()) return out;
  json& spec = object["spec"];
  auto consider = [&out](json& holder) {
    if (!holder.is_object() || !holder.contains("secretRef")) return;
    json& ref = holder["secretRef"];
    if (ref.is_object() && ref.contains("encryptedFile") && ref["encryptedFile"].is_string()) out.push_back(&ref);
  };
  if (spec.contains("contentFrom")) consider(spec["contentFrom"]);
  if (spec.contains("env") && spec["env"].is_array()) {
    for (json& e : spec["env"]) {
      if (e.is_object() && e.contains("valueFrom")) consider(e["valueFrom"]);
    }
  }
  return out;
}

}  // namespace

std::string DefinitionKey(const v1::Application& app, const v1::Environment& env) {
  v1::Application a = app;
  v1::Environment e = env;
  a.clear_create_time();
  a.clear_update_time();
  a.clear_status();
  a.clear_declared_by();
  a.clear_notifications();  // who hears about it, not what is deployed
  e.clear_create_time();
  e.clear_update_time();
  e.clear_declared_by();
  std::string material;
  {
    google::protobuf::io::StringOutputStream stream(&material);
    google::protobuf::io::CodedOutputStream out(&stream);
    out.SetSerializationDeterministic(true);
    a.SerializeToCodedStream(&out);
    e.SerializeToCodedStream(&out);
  }
  return Sha256Hex(material);
}

absl::StatusOr<std::vector<v1::Manifest>> PlanMaker::ResolveContentFrom(const v1::Application& app, const std::string& sha,
                                                                       const std::vector<v1::Manifest>& manifests) {
  std::vector<v1::Manifest> out = manifests;
  // The bytes of a file of the application's folder at `sha`, relative to
  // the manifest's folder; nullopt when it cannot be read (the deployer then
  // refuses the deployment with a clear message).
  auto read_file = [&](const v1::Manifest& m, const std::string& rel) -> absl::StatusOr<std::optional<std::string>> {
    absl::StatusOr<std::string> path = ResolveRepoPath(RepoDirName(m.source_path()), rel);
    if (!path.ok()) return std::nullopt;
    absl::StatusOr<std::vector<TreeEntry>> read = repo_->ReadTree(app.repository_id(), sha, *path, false);
    if (!read.ok()) {
      if (absl::IsNotFound(read.status()) || absl::IsInvalidArgument(read.status())) return std::nullopt;
      return read.status();
    }
    if (read->size() != 1 || read->front().type != v1::CONTENT_ENTRY_TYPE_FILE) return std::nullopt;
    return read->front().data;
  };
  for (v1::Manifest& m : out) {
    if (m.object().group() != "ferry.dev" || (m.object().kind() != "ConfigFile" && m.object().kind() != "Process"))
      continue;
    absl::StatusOr<json> parsed = ParseJson(m.json());
    if (!parsed.ok()) continue;
    json& object = *parsed;
    // An encrypted secret file in Git is compared by the sha256 of its
    // bytes (sourceDigest, as the deployer records it): a re-sealed secret
    // shows in the plan as a changed digest, never as a value.
    bool secrets_changed = false;
    for (json* ref : EncryptedSecretRefs(object)) {
      ASSIGN_OR_RETURN(std::optional<std::string> bytes, read_file(m, (*ref)["encryptedFile"].get<std::string>()));
      if (!bytes) continue;
      (*ref)["sourceDigest"] = absl::StrCat("sha256:", Sha256Hex(*bytes));
      secrets_changed = true;
    }
    if (secrets_changed) {
      absl::StatusOr<std::string> with_digests = DumpJson(object);
      if (with_digests.ok()) m.set_json(*with_digests);
    }
    if (m.object().kind() != "ConfigFile") continue;
    const json* file = nullptr;
    if (object.is_object() && object.contains("spec") && object["spec"].is_object() &&
        object["spec"].contains("contentFrom") && object["spec"]["contentFrom"].is_object() &&
        object["spec"]["contentFrom"].contains("file") && object["spec"]["contentFrom"]["file"].is_string())
      file = &object["spec"]["contentFrom"]["file"];
    if (file == nullptr) continue;
    absl::StatusOr<std::string> path = ResolveRepoPath(RepoDirName(m.source_path()), file->get<std::string>());
    if (!path.ok()) continue;  // the deployer refuses it with a clear message
    absl::StatusOr<std::vector<TreeEntry>> read = repo_->ReadTree(app.repository_id(), sha, *path, false);
    if (!read.ok()) {
      if (absl::IsNotFound(read.status()) || absl::IsInvalidArgument(read.status())) continue;
      return read.status();
    }
    if (read->size() != 1 || read->front().type != v1::CONTENT_ENTRY_TYPE_FILE) continue;
    const std::string& data = read->front().data;
    object["spec"].erase("contentFrom");
    if (DumpJson(json(data)).ok()) {
      object["spec"]["content"] = data;
    } else {
      // Binary content: carried exactly, as base64 (manifests stay UTF-8 JSON).
      object["spec"]["contentBase64"] = absl::Base64Escape(data);
    }
    absl::StatusOr<std::string> resolved = DumpJson(object);
    if (!resolved.ok()) {
      return RenderFailure(absl::StatusCode::kInvalidArgument,
                           absl::StrCat(m.source_path(), ": ConfigFile \"", m.object().name(),
                                        "\" is not UTF-8 JSON: ", resolved.status().message()),
                           m.source_path());
    }
    m.set_json(*std::move(resolved));
  }
  return out;
}

absl::StatusOr<v1::LiveState> PlanMaker::ObserveOrLastApplied(const v1::Application& app, const v1::Environment& env,
                                                            const std::vector<v1::Manifest>& desired) {
  absl::StatusOr<v1::LiveState> live = live_->Observe(app.id(), env.id(), env.target(), desired);
  if (live.ok()) return live;
  if (!absl::IsUnavailable(live.status()) && !absl::IsUnimplemented(live.status()) &&
      !absl::IsDeadlineExceeded(live.status()))
    return live.status();
  // The deployer cannot answer: diff against what was last applied here.
  logging::Warn("live state unavailable; diffing against the last applied plan",
                {{"application", app.id()}, {"environment", env.id()}, {"error", live.status().ToString()}});
  v1::LiveState state;
  PlanFilter f;
  f.application_id = app.id();
  f.environment_id = env.id();
  f.states = {v1::PLAN_STATE_SUCCEEDED};
  f.limit = 1;
  ASSIGN_OR_RETURN(PlanPage last, plans_->ListPlans(f));
  if (last.plans.empty()) return state;
  *state.mutable_revision() = last.plans[0].target_revision();
  for (const auto& m : last.plans[0].manifests()) {
    v1::LiveObject* o = state.add_objects();
    *o->mutable_object() = m.object();
    o->set_live_json(m.json());
    o->set_applied_json(m.json());
  }
  return state;
}

absl::StatusOr<v1::Plan> PlanMaker::PersistFailedPlan(const PlanRequest& request, const absl::Status& failure,
                                                    const std::string& renderer_version) {
  v1::Plan plan;
  plan.set_application_id(request.app.id());
  plan.set_environment_id(request.env.id());
  plan.set_state(v1::PLAN_STATE_FAILED);
  plan.set_trigger(request.trigger);
  *plan.mutable_target_revision() = request.target;
  *plan.mutable_failure() = ToPlanFailure(failure);
  *plan.mutable_requested_by() = request.requested_by.id().empty() ? SystemActor() : request.requested_by;
  plan.set_renderer_version(renderer_version);
  *plan.mutable_target() = request.env.target();
  plan.set_deployer_group(request.env.deployer_group());
  *plan.mutable_create_time() = events_.Now();
  *plan.mutable_update_time() = events_.Now();
  if (request.preview) {
    plan.set_preview(true);
    plan.set_trigger(v1::PLAN_TRIGGER_PREVIEW);
    plan.set_state(v1::PLAN_STATE_UNSPECIFIED);
    return plan;
  }
  absl::StatusOr<v1::Plan> stored = plans_->InsertPlan(
      plan, DefinitionKey(request.app, request.env), request.dedupe, /*supersede_open=*/false,
      [&](const v1::Plan& stored) {
        v1::Event e = events_.Make(v1::AUDIT_ACTION_RENDER_FAILED, stored.requested_by(),
                                absl::StrCat("render of ", stored.application_id(), " at ", ShortSha(stored.target_revision().sha()),
                                             " failed: ", stored.failure().message()),
                                "render-failed/" + stored.id());
        e.mutable_subject()->set_application_id(stored.application_id());
        e.mutable_subject()->set_environment_id(stored.environment_id());
        e.mutable_subject()->set_plan_id(stored.id());
        e.mutable_subject()->set_repository_id(stored.target_revision().repository_id());
        e.mutable_subject()->set_commit_sha(stored.target_revision().sha());
        return std::vector<v1::Event>{e};
      },
      nullptr);
  if (stored.ok()) metrics_->Plan("failed");
  return stored;
}

void PlanMaker::RememberAuthor(const std::string& repository_id, const std::string& sha,
                               const v1::CommitAuthor& author) {
  constexpr size_t kRememberedAuthors = 256;
  ferry::MutexLock l(&authors_mu_);
  if (authors_.size() >= kRememberedAuthors) authors_.clear();
  authors_.insert_or_assign(std::make_pair(repository_id, sha), author);
}

absl::StatusOr<v1::CommitAuthor> PlanMaker::AuthorOf(const v1::CommitRef& target) {
  {
    ferry::MutexLock l(&authors_mu_);
    auto it = authors_.find(std::make_pair(target.repository_id(), target.sha()));
    if (it != authors_.end()) return it->second;
  }
  // Not remembered (recorded by another replica, or forgotten): plans of the
  // commit that miss at once may each read it; the first remembers it.
  ASSIGN_OR_RETURN(std::optional<v1::CommitAuthor> known, plans_->GetCommitAuthor(target.repository_id(), target.sha()));
  if (!known) return v1::CommitAuthor();  // not recorded (yet): asked again next time
  RememberAuthor(target.repository_id(), target.sha(), *known);
  return *std::move(known);
}

absl::Status PlanMaker::CheckRequesterMayApprove(const PlanRequest& request) {
  v1::Plan asked;
  asked.set_environment_id(request.env.id());
  *asked.mutable_target_revision() = request.target;
  *asked.mutable_requested_by() = request.requested_by;
  ASSIGN_OR_RETURN(*asked.mutable_target_author(), AuthorOf(request.target));
  return CheckSeparationOfDuties(approvals_->RuleFor(request.env.id()), asked, request.requested_by);
}

absl::StatusOr<PlanOutcome> PlanMaker::MakePlan(const PlanRequest& request) {
  const v1::Application& app = request.app;
  const v1::Environment& env = request.env;
  const std::string& sha = request.target.sha();
  const std::string version = renderer_->Version(app.render_method());
  PlanOutcome outcome;

  // Whose commit it is, and whether the requester may approve it.
  v1::CommitAuthor author;
  if (!request.preview) {
    ASSIGN_OR_RETURN(author, AuthorOf(request.target));
  }
  // A rollback restores a revision deployed in this environment before (the
  // RevisionGate checked that), so it was approved then: the operator who
  // asks for it approves it alone, whatever the separation of duties.
  const bool rollback = request.trigger == v1::PLAN_TRIGGER_ROLLBACK;
  const int required = rollback ? 1 : std::max(1, approvals_->RuleFor(env.id()).required);
  if (request.approve && !request.preview && !rollback) RETURN_IF_ERROR(CheckRequesterMayApprove(request));

  // Render, through the cache. A new revision plans only the applications
  // whose files it changed, and a hard refresh skips the cache: those render,
  // so their files come with the listing when small.
  const bool will_render = request.hard || request.trigger == v1::PLAN_TRIGGER_NEW_REVISION;
  absl::StatusOr<RenderInputs> inputs = renderer_->CollectInputs(app, sha, will_render ? kListingDataBytes : 0);
  absl::StatusOr<std::vector<v1::Manifest>> manifests;
  if (!inputs.ok()) {
    manifests = inputs.status();
  } else {
    std::optional<std::vector<v1::Manifest>> cached;
    if (!request.hard) {
      ASSIGN_OR_RETURN(cached, renders_->GetCachedRender(inputs->cache_key));
    }
    if (cached) {
      metrics_->CacheHit();
      manifests = std::move(*cached);
    } else {
      absl::Time start = absl::Now();
      manifests = renderer_->Render(app, sha, *inputs);
      metrics_->Render(MethodLabel(app.render_method()), absl::ToDoubleSeconds(absl::Now() - start));
      if (manifests.ok()) RETURN_IF_ERROR(renders_->PutCachedRender(inputs->cache_key, *manifests));
    }
    if (!request.preview) {
      // Remember what else the render read (Kustomize bases, values files)
      // so that a change there re-plans this application.
      std::vector<std::string> extra(inputs->roots.begin() + 1, inputs->roots.end());
      std::vector<std::string> known;
      if (request.input_paths) {
        known = *request.input_paths;
      } else {
        ASSIGN_OR_RETURN(known, renders_->GetInputPaths(app.id()));
      }
      if (known != extra) RETURN_IF_ERROR(renders_->SetInputPaths(app.id(), extra));
    }
  }
  if (!manifests.ok()) {
    if (!IsRenderFailure(manifests.status())) return manifests.status();
    ASSIGN_OR_RETURN(v1::Plan failed, PersistFailedPlan(request, manifests.status(), version));
    outcome.plan = std::move(failed);
    return outcome;
  }

  // Terraform Stacks take this environment's input variables (a render is
  // per application).
  AddTerraformVariables(*manifests, app.id(), env.target());

  // Diff against live state.
  ASSIGN_OR_RETURN(v1::LiveState live, ObserveOrLastApplied(app, env, *manifests));
  if (env.target().kind() == v1::TARGET_KIND_TERRAFORM) {
    // The deployer's dry run is the Terraform plan: without one (terraform
    // plan failed, or no deployer answered) there is nothing to approve.
    absl::Status planned = TerraformDryRunFailure(*manifests, live);
    if (!planned.ok()) {
      ASSIGN_OR_RETURN(v1::Plan failed, PersistFailedPlan(request, planned, version));
      outcome.plan = std::move(failed);
      return outcome;
    }
  }
  absl::StatusOr<std::vector<v1::Manifest>> comparable = ResolveContentFrom(app, sha, *manifests);
  if (!comparable.ok()) {
    if (!IsRenderFailure(comparable.status())) return comparable.status();
    ASSIGN_OR_RETURN(v1::Plan failed, PersistFailedPlan(request, comparable.status(), version));
    outcome.plan = std::move(failed);
    return outcome;
  }
  DiffOptions diff_options;
  diff_options.prune = app.sync_policy().prune();
  diff_options.ignore.assign(app.ignore_differences().begin(), app.ignore_differences().end());
  std::vector<v1::PlanAction> actions =
      DiffObjects(*comparable, {live.objects().begin(), live.objects().end()}, diff_options);
  // Terraform Stacks name the plan the deployer made of them in its dry run:
  // the deployment applies exactly that plan.
  PinTerraformPlans(*manifests, live);
  if (!HasChanges(actions) && !request.preview) {
    metrics_->Plan("up_to_date");
    outcome.up_to_date = true;
    return outcome;
  }

  v1::Plan plan;
  plan.set_application_id(app.id());
  plan.set_environment_id(env.id());
  plan.set_trigger(request.trigger);
  *plan.mutable_source_revision() = live.revision();
  *plan.mutable_target_revision() = request.target;
  plan.set_manifests_digest(ManifestsDigest(*manifests));
  for (auto& m : *manifests) *plan.add_manifests() = std::move(m);
  for (auto& a : actions) *plan.add_actions() = std::move(a);
  *plan.mutable_target() = env.target();
  plan.set_deployer_group(env.deployer_group());
  *plan.mutable_sync_policy() = app.sync_policy();
  if (app.has_health_timeout()) {
    *plan.mutable_health_timeout() = app.health_timeout();
  } else {
    plan.mutable_health_timeout()->set_seconds(300);
  }
  *plan.mutable_ignore_differences() = app.ignore_differences();
  *plan.mutable_requested_by() = request.requested_by.id().empty() ? SystemActor() : request.requested_by;
  if (!author.name().empty() || !author.email().empty()) *plan.mutable_target_author() = author;
  plan.set_rollback_to_deployment_id(request.rollback_to_deployment_id);
  plan.set_renderer_version(version);
  *plan.mutable_create_time() = events_.Now();
  *plan.mutable_update_time() = events_.Now();

  if (request.preview) {
    plan.set_preview(true);
    plan.set_trigger(v1::PLAN_TRIGGER_PREVIEW);
    metrics_->Plan("preview");
    outcome.plan = std::move(plan);
    return outcome;
  }

  // The application's own checks (ferry.yaml `checks:`) over the rendered
  // manifests; a rollback restores a revision deployed before and skips them
  // as it skips required checks.
  if (!rollback && !ChecksFor(app, env.id()).empty()) {
    if (check_runner_ == nullptr) {
      for (const v1::CheckCommand& c : ChecksFor(app, env.id())) {
        v1::CheckRun* run = plan.add_check_runs();
        run->set_name(c.name());
        run->set_result(v1::CHECK_RUN_RESULT_FAILED);
        run->set_exit_code(-1);
        run->set_description("not run: this planner runs no checks");
        *run->mutable_finish_time() = events_.Now();
      }
    } else {
      ASSIGN_OR_RETURN(std::vector<v1::CheckRun> runs, check_runner_->RunAll(app, plan));
      for (v1::CheckRun& r : runs) *plan.add_check_runs() = std::move(r);
    }
  }

  // dependsOn: plans of dependencies in this environment still open.
  for (const std::string& dep : app.depends_on()) {
    PlanFilter f;
    f.application_id = dep;
    f.environment_id = env.id();
    f.states = {v1::PLAN_STATE_PENDING, v1::PLAN_STATE_APPROVED, v1::PLAN_STATE_EXECUTING};
    f.limit = 1;
    ASSIGN_OR_RETURN(PlanPage open, plans_->ListPlans(f));
    if (!open.plans.empty()) plan.add_after_plan_ids(open.plans[0].id());
  }

  // Approval. A pin (set by the deployer after a rollback) stops automatic
  // plans from moving the application forward until a person approves.
  const bool automatic = request.trigger == v1::PLAN_TRIGGER_NEW_REVISION || request.trigger == v1::PLAN_TRIGGER_REFRESH;
  const bool pinned = automatic && live.pin().pinned() && !request.approve;
  // The requester's approval (approve) is one approval under the
  // environment's rule; automatic approval is not counted and needs none.
  if (request.approve) {
    v1::PlanDecision* mine = plan.add_approvals();
    *mine->mutable_actor() = plan.requested_by();
    mine->set_comment(request.comment);
    *mine->mutable_time() = events_.Now();
  }
  bool approved = (request.approve && plan.approvals_size() >= required) ||
                  (env.approval() == v1::APPROVAL_POLICY_AUTO && !pinned);
  plan.set_state(approved ? v1::PLAN_STATE_APPROVED : v1::PLAN_STATE_PENDING);
  if (approved) {
    v1::PlanDecision* d = plan.mutable_decision();
    *d->mutable_actor() = request.approve ? plan.requested_by() : SystemActor();
    d->set_comment(request.approve ? request.comment : "approval policy auto");
    *d->mutable_time() = events_.Now();
    d->set_automatic(!request.approve);
  }
  if (pinned) {
    plan.set_hold_reason(v1::HOLD_REASON_PINNED);
    plan.set_hold_message(absl::StrCat("application is pinned at ", ShortSha(live.pin().sha()),
                                       live.pin().reason().empty() ? "" : " (" + live.pin().reason() + ")",
                                       "; approve this plan to move it forward"));
  }
  ASSIGN_OR_RETURN(Hold hold, holds_->ComputeHold(plan, env));
  if (hold.FailedByCheck()) {
    // A required check already failed on the commit: the plan is made
    // FAILED (audited as such), never released.
    plan.set_state(v1::PLAN_STATE_FAILED);
    plan.mutable_failure()->set_message(hold.checks.message);
  }
  plan.set_hold_reason(hold.reason);
  plan.set_hold_message(hold.message);

  ASSIGN_OR_RETURN(
      v1::Plan stored,
      plans_->InsertPlan(
          plan, DefinitionKey(app, env), request.dedupe, /*supersede_open=*/true,
          [&](const v1::Plan& p) {
            std::vector<v1::Event> events;
            auto subject = [&](v1::Event& e) {
              e.mutable_subject()->set_application_id(p.application_id());
              e.mutable_subject()->set_environment_id(p.environment_id());
              e.mutable_subject()->set_plan_id(p.id());
              e.mutable_subject()->set_repository_id(p.target_revision().repository_id());
              e.mutable_subject()->set_commit_sha(p.target_revision().sha());
              e.mutable_subject()->set_ref(p.target_revision().ref());
            };
            int creates = 0, updates = 0, deletes = 0;
            for (const auto& a : p.actions()) {
              creates += a.action() == v1::OBJECT_ACTION_CREATE;
              updates += a.action() == v1::OBJECT_ACTION_UPDATE;
              deletes += a.action() == v1::OBJECT_ACTION_DELETE;
            }
            v1::Event created = events_.Make(
                v1::AUDIT_ACTION_PLAN_CREATED, p.requested_by(),
                absl::StrCat("plan ", p.id(), " for ", p.application_id(), " in ", p.environment_id(), " at ",
                             ShortSha(p.target_revision().sha()), ": ", creates, " create, ", updates, " update, ", deletes,
                             " delete"),
                "plan-created/" + p.id());
            subject(created);
            auto& fields = *created.mutable_details()->mutable_fields();
            fields["manifests_digest"].set_string_value(p.manifests_digest());
            fields["trigger"].set_string_value(v1::PlanTrigger_Name(p.trigger()));
            fields["renderer_version"].set_string_value(p.renderer_version());
            // The state it was created in: PLAN_STATE_PENDING is "waiting for
            // approval" to the notifier (services/notifier).
            fields["state"].set_string_value(v1::PlanState_Name(p.state()));
            events.push_back(created);
            if (p.state() == v1::PLAN_STATE_APPROVED) {
              v1::Event e = events_.Make(v1::AUDIT_ACTION_PLAN_APPROVED, p.decision().actor(),
                                      absl::StrCat("plan ", p.id(), " approved",
                                                   p.decision().automatic() ? " (approval policy auto)" : ""),
                                      "plan-approved/" + p.id());
              subject(e);
              events.push_back(e);
            } else if (p.approvals_size() > 0) {
              v1::Event e = events_.Make(
                  v1::AUDIT_ACTION_PLAN_APPROVAL_RECORDED, p.requested_by(),
                  absl::StrCat("plan ", p.id(), ": approval by ", p.requested_by().id(), " recorded, ",
                               ApprovalCount(p.approvals_size(), required)),
                  "plan-approval-recorded/" + p.id());
              subject(e);
              auto& approval_fields = *e.mutable_details()->mutable_fields();
              approval_fields["approvals_recorded"].set_number_value(p.approvals_size());
              approval_fields["approvals_required"].set_number_value(required);
              events.push_back(e);
            }
            for (const v1::CheckRun& run : p.check_runs()) {
              const bool passed = run.result() == v1::CHECK_RUN_RESULT_PASSED;
              v1::Event e = events_.Make(
                  v1::AUDIT_ACTION_PLAN_CHECK_RAN, SystemActor(),
                  absl::StrCat("check ", run.name(), " ", passed ? "passed" : "failed", " on plan ", p.id(), " (",
                               p.application_id(), " in ", p.environment_id(), " at ",
                               ShortSha(p.target_revision().sha()), "): ", run.description()),
                  absl::StrCat("plan-check-ran/", p.id(), "/", run.name()));
              subject(e);
              auto& f = *e.mutable_details()->mutable_fields();
              f["check"].set_string_value(run.name());
              f["result"].set_string_value(passed ? "passed" : "failed");
              f["exit_code"].set_number_value(run.exit_code());
              f["description"].set_string_value(run.description());
              f["duration_seconds"].set_number_value(static_cast<double>(run.duration().seconds()) +
                                                     run.duration().nanos() / 1e9);
              // The start of its output (the plan holds up to --check-max-output-bytes).
              f["output"].set_string_value(text::SanitizeUtf8(run.output().substr(0, 1024)));
              f["output_bytes"].set_number_value(static_cast<double>(run.output().size()));
              f["output_truncated"].set_bool_value(run.output_truncated() || run.output().size() > 1024);
              events.push_back(e);
            }
            for (v1::Event& e : holds_->check_gate().DecisionEvents(p, hold.checks, v1::HOLD_REASON_UNSPECIFIED, "",
                                                                    /*created=*/true))
              events.push_back(std::move(e));
            return events;
          },
          [&](const v1::Plan& old, const v1::Plan& by) {
            v1::Event e = events_.Make(v1::AUDIT_ACTION_PLAN_SUPERSEDED, SystemActor(),
                                    absl::StrCat("plan ", old.id(), " superseded by ", by.id(), " (revision ",
                                                 ShortSha(by.target_revision().sha()), ")"),
                                    "plan-superseded/" + old.id());
            e.mutable_subject()->set_application_id(old.application_id());
            e.mutable_subject()->set_environment_id(old.environment_id());
            e.mutable_subject()->set_plan_id(old.id());
            e.mutable_subject()->set_commit_sha(old.target_revision().sha());
            return e;
          }));
  metrics_->Plan("created");
  notifier_->Notify();
  outcome.plan = std::move(stored);
  return outcome;
}

}  // namespace ferry::planner
