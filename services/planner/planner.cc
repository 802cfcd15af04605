#include "services/planner/planner.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/field_mask_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <google/protobuf/util/time_util.h>

#include <atomic>
#include <regex>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/concurrency/parallel_for.h"
#include "common/concurrency/retry_aborted.h"
#include "common/logging/logger.h"
#include "common/status/status_macros.h"
#include "services/planner/declarative_config.h"
#include "services/planner/differ.h"
#include "services/planner/manifest_parser.h"
#include "services/planner/render_failure.h"
#include "services/planner/repo_path.h"
#include "services/planner/sync_window.h"
#include "services/planner/validation.h"

namespace ferry::planner {
namespace {

using google::protobuf::util::FieldMaskUtil;
using nlohmann::json;
using google::protobuf::util::MessageDifferencer;
using google::protobuf::util::TimeUtil;

constexpr int kMaxPageSize = 1000;
constexpr int kDefaultPageSize = 50;

absl::StatusOr<int> PageSize(int requested) {
  if (requested < 0 || requested > kMaxPageSize)
    return absl::InvalidArgumentError(absl::StrCat("page_size: must be between 0 and ", kMaxPageSize));
  return requested == 0 ? kDefaultPageSize : requested;
}

bool IsTerminal(v1::PlanState s) {
  return s == v1::PLAN_STATE_REJECTED || s == v1::PLAN_STATE_SUCCEEDED || s == v1::PLAN_STATE_FAILED ||
         s == v1::PLAN_STATE_ROLLED_BACK || s == v1::PLAN_STATE_SUPERSEDED;
}

std::string Short(const std::string& sha) { return sha.substr(0, 12); }

std::string SourceKey(const v1::DeclarationSource& s) { return absl::StrCat(s.repository_id(), ":", s.ref(), ":", s.path()); }

std::string DescribeSource(const v1::DeclarationSource& s) {
  return absl::StrCat(s.path(), " of repository ", s.repository_id(), " (", s.ref(), ")");
}

// Spec equality ignoring output-only fields.
template <typename T>
bool SameSpec(T a, T b) {
  for (T* m : {&a, &b}) {
    m->clear_create_time();
    m->clear_update_time();
    m->clear_declared_by();
    if constexpr (std::is_same_v<T, v1::Application>) m->clear_status();
  }
  return MessageDifferencer::Equals(a, b);
}

std::atomic<uint64_t> g_event_counter{0};

std::string MethodLabel(v1::RenderMethod method) {
  switch (method) {
    case v1::RENDER_METHOD_PLAIN:
      return "plain";
    case v1::RENDER_METHOD_KUSTOMIZE:
      return "kustomize";
    case v1::RENDER_METHOD_HELM:
      return "helm";
    default:
      return "unknown";
  }
}

}  // namespace

v1::Actor SystemActor() {
  v1::Actor a;
  a.set_kind(v1::ACTOR_KIND_SYSTEM);
  a.set_id("ferry");
  return a;
}

std::string DefinitionKey(const v1::Application& app, const v1::Environment& env) {
  v1::Application a = app;
  v1::Environment e = env;
  a.clear_create_time();
  a.clear_update_time();
  a.clear_status();
  a.clear_declared_by();
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

void ToBasicView(v1::Plan& plan) {
  plan.clear_manifests();
  for (auto& a : *plan.mutable_actions()) {
    a.clear_json_patch();
    a.clear_unified_diff();
  }
}

Planner::Planner(PlannerStore* store, RepoSource* repo, LiveStateSource* live, Renderer* renderer, const Clock* clock,
                 PlanNotifier* notifier, PlannerMetrics* metrics, int plan_concurrency)
    : store_(store),
      repo_(repo),
      live_(live),
      renderer_(renderer),
      clock_(clock),
      notifier_(notifier),
      metrics_(metrics),
      plan_concurrency_(std::max(1, plan_concurrency)) {}

google::protobuf::Timestamp Planner::Now() const {
  return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(clock_->Now()));
}

v1::Event Planner::MakeEvent(int action, const v1::Actor& actor, const std::string& message, const std::string& key) {
  v1::Event e;
  e.set_action(static_cast<v1::AuditAction>(action));
  *e.mutable_actor() = actor.id().empty() ? SystemActor() : actor;
  e.set_message(message);
  *e.mutable_time() = Now();
  e.set_idempotency_key(absl::StrCat(key, "/", absl::ToUnixNanos(clock_->Now()), "-", g_event_counter.fetch_add(1)));
  return e;
}

// ---------------------------------------------------------------------------
// Applications and environments

absl::StatusOr<v1::Application> Planner::CreateApplication(v1::Application app, const v1::Actor& actor) {
  app.clear_declared_by();
  app.clear_status();
  ASSIGN_OR_RETURN(std::vector<v1::Environment> envs, store_->ListEnvironments());
  std::set<std::string> env_ids;
  for (const auto& e : envs) env_ids.insert(e.id());
  RETURN_IF_ERROR(ValidateApplication(app, env_ids));
  ASSIGN_OR_RETURN(std::vector<v1::Application> apps, store_->ListApplications());
  std::map<std::string, v1::Application> graph;
  for (auto& a : apps) graph[a.id()] = a;
  if (graph.count(app.id())) return absl::AlreadyExistsError(absl::StrCat("application \"", app.id(), "\" already exists"));
  graph[app.id()] = app;
  RETURN_IF_ERROR(ValidateDependsOn(graph));
  *app.mutable_create_time() = Now();
  *app.mutable_update_time() = Now();
  ConfigChange change;
  change.create_applications.push_back(app);
  v1::Event e = MakeEvent(v1::AUDIT_ACTION_APPLICATION_CREATED, actor, "application " + app.id() + " created",
                          "application-created/" + app.id());
  e.mutable_subject()->set_application_id(app.id());
  e.mutable_subject()->set_repository_id(app.repository_id());
  change.events.push_back(e);
  RETURN_IF_ERROR(store_->ApplyConfigChange(change));
  return app;
}

absl::StatusOr<v1::Application> Planner::GetApplication(const std::string& id) {
  ASSIGN_OR_RETURN(v1::Application app, store_->GetApplication(id));
  for (const std::string& env : app.environment_ids()) {
    v1::ApplicationEnvironmentStatus* st = app.add_status();
    st->set_environment_id(env);
    PlanFilter f;
    f.application_id = id;
    f.environment_id = env;
    f.limit = 1;
    ASSIGN_OR_RETURN(PlanPage latest, store_->ListPlans(f));
    f.states = {v1::PLAN_STATE_SUCCEEDED};
    ASSIGN_OR_RETURN(PlanPage succeeded, store_->ListPlans(f));
    if (!succeeded.plans.empty()) st->set_deployed_sha(succeeded.plans[0].target_revision().sha());
    if (latest.plans.empty()) {
      st->set_sync_status(v1::SYNC_STATUS_UNKNOWN);
      continue;
    }
    const v1::Plan& p = latest.plans[0];
    st->set_last_plan_id(p.id());
    st->set_last_plan_state(p.state());
    st->set_sync_status(p.state() == v1::PLAN_STATE_SUCCEEDED ? v1::SYNC_STATUS_SYNCED
                        : p.state() == v1::PLAN_STATE_FAILED  ? v1::SYNC_STATUS_UNKNOWN
                                                              : v1::SYNC_STATUS_OUT_OF_SYNC);
  }
  return app;
}

absl::StatusOr<v1::ListApplicationsResponse> Planner::ListApplications(const v1::ListApplicationsRequest& request) {
  ASSIGN_OR_RETURN(int size, PageSize(request.page_size()));
  ASSIGN_OR_RETURN(std::vector<v1::Application> apps, store_->ListApplications());
  v1::ListApplicationsResponse out;
  for (auto& a : apps) {
    if (!request.page_token().empty() && a.id() <= request.page_token()) continue;
    if (!request.repository_id().empty() && a.repository_id() != request.repository_id()) continue;
    if (!request.environment_id().empty() &&
        std::find(a.environment_ids().begin(), a.environment_ids().end(), request.environment_id()) ==
            a.environment_ids().end())
      continue;
    if (out.applications_size() == size) {
      out.set_next_page_token(out.applications(size - 1).id());
      break;
    }
    *out.add_applications() = std::move(a);
  }
  return out;
}

absl::StatusOr<v1::Application> Planner::UpdateApplication(const v1::Application& update,
                                                           const google::protobuf::FieldMask& mask,
                                                           const v1::Actor& actor) {
  // Merged into the stored spec, which must not change meanwhile: if it
  // did, merge again into the new one.
  return concurrency::RetryWhileAborted([&] { return MergeApplicationUpdate(update, mask, actor); });
}

absl::StatusOr<v1::Application> Planner::MergeApplicationUpdate(const v1::Application& update,
                                                                const google::protobuf::FieldMask& mask,
                                                                const v1::Actor& actor) {
  static const std::set<std::string> kMutable = {"repository_id", "ref", "path", "render_method", "helm",
                                                 "environment_ids", "sync_policy", "depends_on", "health_timeout",
                                                 "ignore_differences"};
  for (const auto& p : mask.paths())
    if (!kMutable.count(p))
      return absl::InvalidArgumentError(absl::StrCat("update_mask: \"", p, "\" is not a mutable application field"));
  ASSIGN_OR_RETURN(v1::Application app, store_->GetApplication(update.id()));
  if (app.has_declared_by()) {
    return absl::FailedPreconditionError(absl::StrCat("application \"", app.id(), "\" is declared in ",
                                                      DescribeSource(app.declared_by()), "; change that file instead"));
  }
  const v1::Application read = app;
  google::protobuf::FieldMask effective = mask;
  if (effective.paths().empty())
    for (const auto& p : kMutable) effective.add_paths(p);
  FieldMaskUtil::MergeOptions options;
  options.set_replace_message_fields(true);
  options.set_replace_repeated_fields(true);
  FieldMaskUtil::MergeMessageTo(update, effective, options, &app);
  ASSIGN_OR_RETURN(std::vector<v1::Environment> envs, store_->ListEnvironments());
  std::set<std::string> env_ids;
  for (const auto& e : envs) env_ids.insert(e.id());
  RETURN_IF_ERROR(ValidateApplication(app, env_ids));
  ASSIGN_OR_RETURN(std::vector<v1::Application> apps, store_->ListApplications());
  std::map<std::string, v1::Application> graph;
  for (auto& a : apps) graph[a.id()] = a;
  graph[app.id()] = app;
  RETURN_IF_ERROR(ValidateDependsOn(graph));
  *app.mutable_update_time() = Now();
  ConfigChange change;
  change.update_applications.push_back(app);
  change.expected_applications[app.id()] = read;
  v1::Event e = MakeEvent(v1::AUDIT_ACTION_APPLICATION_UPDATED, actor, "application " + app.id() + " updated",
                          "application-updated/" + app.id());
  e.mutable_subject()->set_application_id(app.id());
  change.events.push_back(e);
  RETURN_IF_ERROR(store_->ApplyConfigChange(change));
  return app;
}

absl::Status Planner::DeleteApplication(const std::string& id, const v1::Actor& actor) {
  ASSIGN_OR_RETURN(v1::Application app, store_->GetApplication(id));
  if (app.has_declared_by()) {
    return absl::FailedPreconditionError(absl::StrCat("application \"", id, "\" is declared in ",
                                                      DescribeSource(app.declared_by()), "; remove it from that file"));
  }
  ASSIGN_OR_RETURN(std::vector<v1::Application> apps, store_->ListApplications());
  for (const auto& a : apps)
    for (const auto& dep : a.depends_on())
      if (dep == id)
        return absl::FailedPreconditionError(
            absl::StrCat("application \"", id, "\" is a dependency of \"", a.id(), "\" (depends_on)"));
  ConfigChange change;
  change.delete_applications.push_back(id);
  change.close_open_plan = [this, actor](v1::Plan& p) { return RejectForDeletion(p, actor); };
  v1::Event e = MakeEvent(v1::AUDIT_ACTION_APPLICATION_DELETED, actor, "application " + id + " deleted",
                          "application-deleted/" + id);
  e.mutable_subject()->set_application_id(id);
  change.events.push_back(e);
  return store_->ApplyConfigChange(change);
}

std::vector<v1::Event> Planner::RejectForDeletion(v1::Plan& plan, const v1::Actor& actor) {
  plan.set_state(v1::PLAN_STATE_REJECTED);
  plan.set_hold_reason(v1::HOLD_REASON_UNSPECIFIED);
  plan.set_hold_message("");
  v1::PlanDecision* d = plan.mutable_decision();
  *d->mutable_actor() = actor.id().empty() ? SystemActor() : actor;
  d->set_comment("application deleted");
  *d->mutable_time() = Now();
  d->set_automatic(false);
  *plan.mutable_update_time() = Now();
  v1::Event e = MakeEvent(v1::AUDIT_ACTION_PLAN_REJECTED, d->actor(),
                          absl::StrCat("plan ", plan.id(), " rejected: application ", plan.application_id(), " deleted"),
                          "plan-rejected/" + plan.id());
  e.mutable_subject()->set_plan_id(plan.id());
  e.mutable_subject()->set_application_id(plan.application_id());
  e.mutable_subject()->set_environment_id(plan.environment_id());
  return {e};
}

absl::StatusOr<v1::Environment> Planner::CreateEnvironment(v1::Environment env, const v1::Actor& actor) {
  env.clear_declared_by();
  ASSIGN_OR_RETURN(std::vector<v1::Environment> envs, store_->ListEnvironments());
  std::map<std::string, v1::Environment> all;
  for (auto& e : envs) all[e.id()] = e;
  if (all.count(env.id())) return absl::AlreadyExistsError(absl::StrCat("environment \"", env.id(), "\" already exists"));
  all[env.id()] = env;
  RETURN_IF_ERROR(ValidateEnvironment(env, all));
  *env.mutable_create_time() = Now();
  *env.mutable_update_time() = Now();
  ConfigChange change;
  change.create_environments.push_back(env);
  v1::Event e = MakeEvent(v1::AUDIT_ACTION_ENVIRONMENT_CREATED, actor, "environment " + env.id() + " created",
                          "environment-created/" + env.id());
  e.mutable_subject()->set_environment_id(env.id());
  change.events.push_back(e);
  RETURN_IF_ERROR(store_->ApplyConfigChange(change));
  return env;
}

absl::StatusOr<v1::Environment> Planner::GetEnvironment(const std::string& id) { return store_->GetEnvironment(id); }

absl::StatusOr<v1::ListEnvironmentsResponse> Planner::ListEnvironments(const v1::ListEnvironmentsRequest& request) {
  ASSIGN_OR_RETURN(int size, PageSize(request.page_size()));
  ASSIGN_OR_RETURN(std::vector<v1::Environment> envs, store_->ListEnvironments());
  v1::ListEnvironmentsResponse out;
  for (auto& e : envs) {
    if (!request.page_token().empty() && e.id() <= request.page_token()) continue;
    if (out.environments_size() == size) {
      out.set_next_page_token(out.environments(size - 1).id());
      break;
    }
    *out.add_environments() = std::move(e);
  }
  return out;
}

absl::StatusOr<v1::Environment> Planner::UpdateEnvironment(const v1::Environment& update,
                                                           const google::protobuf::FieldMask& mask,
                                                           const v1::Actor& actor) {
  // Merged into the stored spec, which must not change meanwhile: if it
  // did, merge again into the new one.
  return concurrency::RetryWhileAborted([&] { return MergeEnvironmentUpdate(update, mask, actor); });
}

absl::StatusOr<v1::Environment> Planner::MergeEnvironmentUpdate(const v1::Environment& update,
                                                                const google::protobuf::FieldMask& mask,
                                                                const v1::Actor& actor) {
  static const std::set<std::string> kMutable = {"target", "approval", "sync_windows", "promote_from"};
  for (const auto& p : mask.paths())
    if (!kMutable.count(p))
      return absl::InvalidArgumentError(absl::StrCat("update_mask: \"", p, "\" is not a mutable environment field"));
  ASSIGN_OR_RETURN(v1::Environment env, store_->GetEnvironment(update.id()));
  if (env.has_declared_by()) {
    return absl::FailedPreconditionError(absl::StrCat("environment \"", env.id(), "\" is declared in ",
                                                      DescribeSource(env.declared_by()), "; change that file instead"));
  }
  const v1::Environment read = env;
  google::protobuf::FieldMask effective = mask;
  if (effective.paths().empty())
    for (const auto& p : kMutable) effective.add_paths(p);
  FieldMaskUtil::MergeOptions options;
  options.set_replace_message_fields(true);
  options.set_replace_repeated_fields(true);
  FieldMaskUtil::MergeMessageTo(update, effective, options, &env);
  ASSIGN_OR_RETURN(std::vector<v1::Environment> envs, store_->ListEnvironments());
  std::map<std::string, v1::Environment> all;
  for (auto& e : envs) all[e.id()] = e;
  all[env.id()] = env;
  RETURN_IF_ERROR(ValidateEnvironment(env, all));
  *env.mutable_update_time() = Now();
  ConfigChange change;
  change.update_environments.push_back(env);
  change.expected_environments[env.id()] = read;
  v1::Event e = MakeEvent(v1::AUDIT_ACTION_ENVIRONMENT_UPDATED, actor, "environment " + env.id() + " updated",
                          "environment-updated/" + env.id());
  e.mutable_subject()->set_environment_id(env.id());
  change.events.push_back(e);
  RETURN_IF_ERROR(store_->ApplyConfigChange(change));
  return env;
}

absl::Status Planner::DeleteEnvironment(const std::string& id, const v1::Actor& actor) {
  ASSIGN_OR_RETURN(v1::Environment env, store_->GetEnvironment(id));
  if (env.has_declared_by()) {
    return absl::FailedPreconditionError(absl::StrCat("environment \"", id, "\" is declared in ",
                                                      DescribeSource(env.declared_by()), "; remove it from that file"));
  }
  ASSIGN_OR_RETURN(std::vector<v1::Environment> envs, store_->ListEnvironments());
  for (const auto& e : envs)
    if (e.promote_from() == id)
      return absl::FailedPreconditionError(absl::StrCat("environment \"", id, "\" is promote_from of \"", e.id(), "\""));
  ASSIGN_OR_RETURN(std::vector<v1::Application> apps, store_->ListApplications());
  for (const auto& a : apps)
    for (const auto& e : a.environment_ids())
      if (e == id)
        return absl::FailedPreconditionError(
            absl::StrCat("environment \"", id, "\" is still used by application \"", a.id(), "\""));
  ConfigChange change;
  change.delete_environments.push_back(id);
  v1::Event e = MakeEvent(v1::AUDIT_ACTION_ENVIRONMENT_DELETED, actor, "environment " + id + " deleted",
                          "environment-deleted/" + id);
  e.mutable_subject()->set_environment_id(id);
  change.events.push_back(e);
  return store_->ApplyConfigChange(change);
}

// ---------------------------------------------------------------------------
// Declarative configuration

absl::StatusOr<std::set<std::string>> Planner::Reconcile(const v1::DeclarationSource& source, const std::string& commit,
                                                         bool dry_run, const v1::Actor& actor,
                                                         v1::ApplyDeclarativeConfigResponse* response) {
  absl::StatusOr<std::vector<TreeEntry>> file = repo_->ReadTree(source.repository_id(), commit, source.path(), false);
  if (!file.ok()) {
    if (absl::IsNotFound(file.status()))
      return absl::InvalidArgumentError(absl::StrCat("source.path: \"", source.path(), "\" does not exist at commit ", Short(commit)));
    return file.status();
  }
  if (file->size() != 1 || file->front().path != source.path() || file->front().type != v1::CONTENT_ENTRY_TYPE_FILE)
    return absl::InvalidArgumentError(absl::StrCat("source.path: \"", source.path(), "\" is not a file"));
  ASSIGN_OR_RETURN(DeclaredConfig declared,
                   ParseDeclarativeConfig(file->front().data, source.path(), source.repository_id(), source.ref()));
  const std::string key = SourceKey(source);
  v1::DeclarationSource stamp = source;
  stamp.set_commit(commit);

  ASSIGN_OR_RETURN(std::vector<v1::Environment> env_list, store_->ListEnvironments());
  ASSIGN_OR_RETURN(std::vector<v1::Application> app_list, store_->ListApplications());
  std::map<std::string, v1::Environment> old_envs, new_envs;
  std::map<std::string, v1::Application> old_apps, new_apps;
  for (auto& e : env_list) {
    bool mine = e.has_declared_by() && SourceKey(e.declared_by()) == key;
    if (!mine) new_envs[e.id()] = e;
    old_envs[e.id()] = std::move(e);
  }
  for (auto& a : app_list) {
    bool mine = a.has_declared_by() && SourceKey(a.declared_by()) == key;
    if (!mine) new_apps[a.id()] = a;
    old_apps[a.id()] = std::move(a);
  }
  auto prefixed = [&](const absl::Status& s, const std::string& what) {
    return absl::Status(s.code(), absl::StrCat(source.path(), ": ", what, ": ", s.message()));
  };
  for (auto& e : declared.environments) {
    if (new_envs.count(e.id()))
      return absl::FailedPreconditionError(absl::StrCat(source.path(), ": environments.", e.id(),
                                                        ": an environment with this id exists and is not declared by this file"));
    *e.mutable_declared_by() = stamp;
    new_envs[e.id()] = e;
  }
  for (auto& a : declared.applications) {
    if (new_apps.count(a.id()))
      return absl::FailedPreconditionError(absl::StrCat(source.path(), ": applications.", a.id(),
                                                        ": an application with this id exists and is not declared by this file"));
    *a.mutable_declared_by() = stamp;
    new_apps[a.id()] = a;
  }
  std::set<std::string> env_ids;
  for (const auto& [id, e] : new_envs) env_ids.insert(id);
  for (auto& e : declared.environments) {
    absl::Status s = ValidateEnvironment(e, new_envs);
    if (!s.ok()) return prefixed(s, "environments." + e.id());
  }
  for (auto& a : declared.applications) {
    absl::Status s = ValidateApplication(a, env_ids);
    if (!s.ok()) return prefixed(s, "applications." + a.id());
    new_apps[a.id()] = a;
  }
  {
    absl::Status s = ValidateDependsOn(new_apps);
    if (!s.ok()) return prefixed(s, "applications");
  }

  ConfigChange change;
  std::set<std::string> changed_apps;
  auto record = [&](const std::string& kind, const std::string& id, v1::ObjectAction action) {
    v1::DeclarativeChange* c = response->add_changes();
    c->set_kind(kind);
    c->set_id(id);
    c->set_action(action);
  };
  auto event = [&](int action, const std::string& what, const std::string& id, bool app) {
    v1::Event e = MakeEvent(action, actor, absl::StrCat(what, " (from ", DescribeSource(source), " at ", Short(commit), ")"),
                            absl::StrCat("declarative/", key, "/", commit, "/", id, "/", action));
    if (app) e.mutable_subject()->set_application_id(id);
    else e.mutable_subject()->set_environment_id(id);
    e.mutable_subject()->set_repository_id(source.repository_id());
    e.mutable_subject()->set_commit_sha(commit);
    e.mutable_subject()->set_ref(source.ref());
    change.events.push_back(e);
  };
  for (auto& e : declared.environments) {
    auto old = old_envs.find(e.id());
    if (old == old_envs.end()) {
      *e.mutable_create_time() = Now();
      *e.mutable_update_time() = Now();
      change.create_environments.push_back(e);
      record("Environment", e.id(), v1::OBJECT_ACTION_CREATE);
      event(v1::AUDIT_ACTION_ENVIRONMENT_CREATED, "environment " + e.id() + " created", e.id(), false);
    } else if (!SameSpec(old->second, e)) {
      *e.mutable_create_time() = old->second.create_time();
      *e.mutable_update_time() = Now();
      change.update_environments.push_back(e);
      record("Environment", e.id(), v1::OBJECT_ACTION_UPDATE);
      event(v1::AUDIT_ACTION_ENVIRONMENT_UPDATED, "environment " + e.id() + " updated", e.id(), false);
    } else {
      *e.mutable_create_time() = old->second.create_time();
      *e.mutable_update_time() = old->second.update_time();
      change.update_environments.push_back(e);  // stamps the new commit
      record("Environment", e.id(), v1::OBJECT_ACTION_NOOP);
    }
  }
  for (auto& a : declared.applications) {
    auto old = old_apps.find(a.id());
    if (old == old_apps.end()) {
      *a.mutable_create_time() = Now();
      *a.mutable_update_time() = Now();
      change.create_applications.push_back(a);
      changed_apps.insert(a.id());
      record("Application", a.id(), v1::OBJECT_ACTION_CREATE);
      event(v1::AUDIT_ACTION_APPLICATION_CREATED, "application " + a.id() + " created", a.id(), true);
    } else if (!SameSpec(old->second, a)) {
      *a.mutable_create_time() = old->second.create_time();
      *a.mutable_update_time() = Now();
      change.update_applications.push_back(a);
      changed_apps.insert(a.id());
      record("Application", a.id(), v1::OBJECT_ACTION_UPDATE);
      event(v1::AUDIT_ACTION_APPLICATION_UPDATED, "application " + a.id() + " updated", a.id(), true);
    } else {
      *a.mutable_create_time() = old->second.create_time();
      *a.mutable_update_time() = old->second.update_time();
      change.update_applications.push_back(a);
      record("Application", a.id(), v1::OBJECT_ACTION_NOOP);
    }
  }
  for (const auto& [id, a] : old_apps) {
    if (a.has_declared_by() && SourceKey(a.declared_by()) == key && !new_apps.count(id)) {
      change.delete_applications.push_back(id);
      record("Application", id, v1::OBJECT_ACTION_DELETE);
      event(v1::AUDIT_ACTION_APPLICATION_DELETED, "application " + id + " deleted", id, true);
    }
  }
  for (const auto& [id, e] : old_envs) {
    if (e.has_declared_by() && SourceKey(e.declared_by()) == key && !new_envs.count(id)) {
      change.delete_environments.push_back(id);
      record("Environment", id, v1::OBJECT_ACTION_DELETE);
      event(v1::AUDIT_ACTION_ENVIRONMENT_DELETED, "environment " + id + " deleted", id, false);
    }
  }
  if (dry_run) return changed_apps;
  change.source = DeclarationSourceRecord{key, stamp};
  change.close_open_plan = [this, actor](v1::Plan& p) { return RejectForDeletion(p, actor); };
  RETURN_IF_ERROR(store_->ApplyConfigChange(change));
  return changed_apps;
}

absl::StatusOr<v1::ApplyDeclarativeConfigResponse> Planner::ApplyDeclarativeConfig(
    const v1::ApplyDeclarativeConfigRequest& request, const v1::Actor& actor) {
  v1::DeclarationSource source = request.source();
  RETURN_IF_ERROR(ValidateId(source.repository_id(), "source.repository_id"));
  if (source.ref().empty()) return absl::InvalidArgumentError("source.ref: is required (e.g. \"main\")");
  source.set_ref(FullRefName(source.ref()));
  ASSIGN_OR_RETURN(std::string path, NormalizeRepoPath(source.path().empty() ? "ferry.yaml" : source.path(), "source.path"));
  if (path.empty()) return absl::InvalidArgumentError("source.path: must name a file");
  source.set_path(path);
  source.clear_commit();
  std::string commit = request.commit();
  if (commit.empty()) {
    ASSIGN_OR_RETURN(commit, repo_->ResolveRef(source.repository_id(), source.ref()));
  }
  v1::ApplyDeclarativeConfigResponse response;
  response.set_commit(commit);
  ASSIGN_OR_RETURN(std::set<std::string> changed, Reconcile(source, commit, request.dry_run(), actor, &response));
  if (!request.dry_run() && !changed.empty()) {
    // New and changed applications get a plan at the tip of their own ref.
    absl::Status s = PlanApplications(changed, v1::CommitRef(), v1::PLAN_TRIGGER_REFRESH).status();
    if (!s.ok()) logging::Warn("planning reconciled applications failed", {{"error", s.ToString()}});
  }
  return response;
}

// ---------------------------------------------------------------------------
// Planning

absl::StatusOr<std::optional<std::string>> Planner::PromotionGate(const std::string& app, const v1::Environment& env,
                                                                  const std::string& sha) {
  if (env.promote_from().empty()) return std::optional<std::string>();
  ASSIGN_OR_RETURN(bool ok, store_->HasSucceeded(app, env.promote_from(), sha));
  if (ok) return std::optional<std::string>();
  return std::optional<std::string>(absl::StrCat("promotion gate: revision ", Short(sha),
                                                 " has not been deployed healthy in environment \"",
                                                 env.promote_from(), "\" yet"));
}

absl::StatusOr<std::vector<v1::Manifest>> Planner::ResolveContentFrom(const v1::Application& app, const std::string& sha,
                                                                       const std::vector<v1::Manifest>& manifests) {
  std::vector<v1::Manifest> out = manifests;
  for (v1::Manifest& m : out) {
    if (m.object().group() != "ferry.dev" || m.object().kind() != "ConfigFile") continue;
    json object = json::parse(m.json(), nullptr, false);
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
    object["spec"]["content"] = read->front().data;
    object["spec"].erase("contentFrom");
    m.set_json(object.dump());
  }
  return out;
}

absl::StatusOr<Planner::Hold> Planner::ComputeHold(const v1::Plan& plan, const v1::Environment& env,
                                                   std::map<std::string, WindowDecision>* windows) {
  Hold hold;
  if (plan.trigger() != v1::PLAN_TRIGGER_ROLLBACK) {
    ASSIGN_OR_RETURN(std::optional<std::string> gate,
                     PromotionGate(plan.application_id(), env, plan.target_revision().sha()));
    if (gate) return Hold{v1::HOLD_REASON_PROMOTION_GATE, *gate};
  }
  if (plan.state() == v1::PLAN_STATE_PENDING) {
    if (plan.hold_reason() == v1::HOLD_REASON_PINNED) return Hold{plan.hold_reason(), plan.hold_message()};
    return Hold{v1::HOLD_REASON_AWAITING_APPROVAL, "waiting for ApprovePlan or RejectPlan"};
  }
  for (const std::string& dep_id : plan.after_plan_ids()) {
    std::string id = dep_id;
    absl::StatusOr<v1::Plan> dep = store_->GetPlan(id);
    for (int hops = 0; dep.ok() && dep->state() == v1::PLAN_STATE_SUPERSEDED && hops < 100; ++hops)
      dep = store_->GetPlan(id = dep->superseded_by_plan_id());
    if (!dep.ok()) {
      if (absl::IsNotFound(dep.status())) continue;
      return dep.status();
    }
    if (dep->state() != v1::PLAN_STATE_SUCCEEDED) {
      return Hold{v1::HOLD_REASON_DEPENDENCY,
                  absl::StrCat("waiting for plan ", dep->id(), " of application \"", dep->application_id(), "\" (",
                               v1::PlanState_Name(dep->state()), ") to succeed (depends_on)")};
    }
  }
  WindowDecision window;
  if (windows != nullptr && windows->count(env.id())) {
    window = windows->at(env.id());
  } else {
    window = EvaluateSyncWindows(env.sync_windows(), clock_->Now());
    if (windows != nullptr) (*windows)[env.id()] = window;
  }
  if (!window.open) return Hold{v1::HOLD_REASON_SYNC_WINDOW_CLOSED, window.message};
  return hold;
}

absl::StatusOr<v1::LiveState> Planner::ObserveOrLastApplied(const v1::Application& app, const v1::Environment& env,
                                                            const std::vector<v1::Manifest>& desired) {
  std::vector<v1::ObjectRef> refs;
  for (const auto& m : desired) refs.push_back(m.object());
  absl::StatusOr<v1::LiveState> live = live_->Observe(app.id(), env.id(), env.target(), refs);
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
  ASSIGN_OR_RETURN(PlanPage last, store_->ListPlans(f));
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

absl::StatusOr<v1::Plan> Planner::PersistFailedPlan(const PlanRequest& request, const absl::Status& failure,
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
  *plan.mutable_create_time() = Now();
  *plan.mutable_update_time() = Now();
  if (request.preview) {
    plan.set_preview(true);
    plan.set_trigger(v1::PLAN_TRIGGER_PREVIEW);
    plan.set_state(v1::PLAN_STATE_UNSPECIFIED);
    return plan;
  }
  absl::StatusOr<v1::Plan> stored = store_->InsertPlan(
      plan, DefinitionKey(request.app, request.env), request.dedupe, /*supersede_open=*/false,
      [&](const v1::Plan& stored) {
        v1::Event e = MakeEvent(v1::AUDIT_ACTION_RENDER_FAILED, stored.requested_by(),
                                absl::StrCat("render of ", stored.application_id(), " at ", Short(stored.target_revision().sha()),
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

absl::StatusOr<PlanOutcome> Planner::MakePlan(const PlanRequest& request) {
  const v1::Application& app = request.app;
  const v1::Environment& env = request.env;
  const std::string& sha = request.target.sha();
  const std::string version = renderer_->Version(app.render_method());
  PlanOutcome outcome;

  // Render, through the cache.
  absl::StatusOr<RenderInputs> inputs = renderer_->CollectInputs(app, sha);
  absl::StatusOr<std::vector<v1::Manifest>> manifests;
  if (!inputs.ok()) {
    manifests = inputs.status();
  } else {
    std::optional<std::vector<v1::Manifest>> cached;
    if (!request.hard) {
      ASSIGN_OR_RETURN(cached, store_->GetCachedRender(inputs->cache_key));
    }
    if (cached) {
      metrics_->CacheHit();
      manifests = std::move(*cached);
    } else {
      absl::Time start = absl::Now();
      manifests = renderer_->Render(app, sha, *inputs);
      metrics_->Render(MethodLabel(app.render_method()), absl::ToDoubleSeconds(absl::Now() - start));
      if (manifests.ok()) RETURN_IF_ERROR(store_->PutCachedRender(inputs->cache_key, *manifests));
    }
    if (!request.preview) {
      // Remember what else the render read (Kustomize bases, values files)
      // so that a change there re-plans this application.
      std::vector<std::string> extra(inputs->roots.begin() + 1, inputs->roots.end());
      ASSIGN_OR_RETURN(std::vector<std::string> known, store_->GetInputPaths(app.id()));
      if (known != extra) RETURN_IF_ERROR(store_->SetInputPaths(app.id(), extra));
    }
  }
  if (!manifests.ok()) {
    if (!IsRenderFailure(manifests.status())) return manifests.status();
    ASSIGN_OR_RETURN(v1::Plan failed, PersistFailedPlan(request, manifests.status(), version));
    outcome.plan = std::move(failed);
    return outcome;
  }

  // Diff against live state.
  ASSIGN_OR_RETURN(v1::LiveState live, ObserveOrLastApplied(app, env, *manifests));
  ASSIGN_OR_RETURN(std::vector<v1::Manifest> comparable, ResolveContentFrom(app, sha, *manifests));
  DiffOptions diff_options;
  diff_options.prune = app.sync_policy().prune();
  diff_options.ignore.assign(app.ignore_differences().begin(), app.ignore_differences().end());
  std::vector<v1::PlanAction> actions = DiffObjects(comparable, {live.objects().begin(), live.objects().end()}, diff_options);
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
  *plan.mutable_sync_policy() = app.sync_policy();
  if (app.has_health_timeout()) {
    *plan.mutable_health_timeout() = app.health_timeout();
  } else {
    plan.mutable_health_timeout()->set_seconds(300);
  }
  *plan.mutable_ignore_differences() = app.ignore_differences();
  *plan.mutable_requested_by() = request.requested_by.id().empty() ? SystemActor() : request.requested_by;
  plan.set_rollback_to_deployment_id(request.rollback_to_deployment_id);
  plan.set_renderer_version(version);
  *plan.mutable_create_time() = Now();
  *plan.mutable_update_time() = Now();

  if (request.preview) {
    plan.set_preview(true);
    plan.set_trigger(v1::PLAN_TRIGGER_PREVIEW);
    metrics_->Plan("preview");
    outcome.plan = std::move(plan);
    return outcome;
  }

  // dependsOn: plans of dependencies in this environment still open.
  for (const std::string& dep : app.depends_on()) {
    PlanFilter f;
    f.application_id = dep;
    f.environment_id = env.id();
    f.states = {v1::PLAN_STATE_PENDING, v1::PLAN_STATE_APPROVED, v1::PLAN_STATE_EXECUTING};
    f.limit = 1;
    ASSIGN_OR_RETURN(PlanPage open, store_->ListPlans(f));
    if (!open.plans.empty()) plan.add_after_plan_ids(open.plans[0].id());
  }

  // Approval. A pin (set by the deployer after a rollback) stops automatic
  // plans from moving the application forward until a person approves.
  const bool automatic = request.trigger == v1::PLAN_TRIGGER_NEW_REVISION || request.trigger == v1::PLAN_TRIGGER_REFRESH;
  const bool pinned = automatic && live.pin().pinned() && !request.approve;
  bool approved = request.approve || (env.approval() == v1::APPROVAL_POLICY_AUTO && !pinned);
  plan.set_state(approved ? v1::PLAN_STATE_APPROVED : v1::PLAN_STATE_PENDING);
  if (approved) {
    v1::PlanDecision* d = plan.mutable_decision();
    *d->mutable_actor() = request.approve ? plan.requested_by() : SystemActor();
    d->set_comment(request.approve ? request.comment : "approval policy auto");
    *d->mutable_time() = Now();
    d->set_automatic(!request.approve);
  }
  if (pinned) {
    plan.set_hold_reason(v1::HOLD_REASON_PINNED);
    plan.set_hold_message(absl::StrCat("application is pinned at ", Short(live.pin().sha()),
                                       live.pin().reason().empty() ? "" : " (" + live.pin().reason() + ")",
                                       "; approve this plan to move it forward"));
  }
  ASSIGN_OR_RETURN(Hold hold, ComputeHold(plan, env));
  plan.set_hold_reason(hold.reason);
  plan.set_hold_message(hold.message);

  ASSIGN_OR_RETURN(
      v1::Plan stored,
      store_->InsertPlan(
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
            v1::Event created = MakeEvent(
                v1::AUDIT_ACTION_PLAN_CREATED, p.requested_by(),
                absl::StrCat("plan ", p.id(), " for ", p.application_id(), " in ", p.environment_id(), " at ",
                             Short(p.target_revision().sha()), ": ", creates, " create, ", updates, " update, ", deletes,
                             " delete"),
                "plan-created/" + p.id());
            subject(created);
            auto& fields = *created.mutable_details()->mutable_fields();
            fields["manifests_digest"].set_string_value(p.manifests_digest());
            fields["trigger"].set_string_value(v1::PlanTrigger_Name(p.trigger()));
            fields["renderer_version"].set_string_value(p.renderer_version());
            events.push_back(created);
            if (p.state() == v1::PLAN_STATE_APPROVED) {
              v1::Event e = MakeEvent(v1::AUDIT_ACTION_PLAN_APPROVED, p.decision().actor(),
                                      absl::StrCat("plan ", p.id(), " approved",
                                                   p.decision().automatic() ? " (approval policy auto)" : ""),
                                      "plan-approved/" + p.id());
              subject(e);
              events.push_back(e);
            }
            return events;
          },
          [&](const v1::Plan& old, const v1::Plan& by) {
            v1::Event e = MakeEvent(v1::AUDIT_ACTION_PLAN_SUPERSEDED, SystemActor(),
                                    absl::StrCat("plan ", old.id(), " superseded by ", by.id(), " (revision ",
                                                 Short(by.target_revision().sha()), ")"),
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

absl::StatusOr<std::string> Planner::ResolveRevision(const v1::Application& app, const v1::RevisionSelector& selector,
                                                     std::string* ref) {
  static const std::regex kSha("[0-9a-f]{40}");
  switch (selector.selector_case()) {
    case v1::RevisionSelector::kSha:
      if (!std::regex_match(selector.sha(), kSha))
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

absl::StatusOr<v1::Plan> Planner::PreviewPlan(const v1::PreviewPlanRequest& request) {
  ASSIGN_OR_RETURN(v1::Application app, store_->GetApplication(request.application_id()));
  if (request.environment_id().empty()) return absl::InvalidArgumentError("environment_id: is required");
  ASSIGN_OR_RETURN(v1::Environment env, store_->GetEnvironment(request.environment_id()));
  PlanRequest r;
  r.app = app;
  r.env = env;
  std::string ref;
  ASSIGN_OR_RETURN(std::string sha, ResolveRevision(app, request.revision(), &ref));
  r.target.set_repository_id(app.repository_id());
  r.target.set_ref(ref);
  r.target.set_sha(sha);
  r.trigger = v1::PLAN_TRIGGER_PREVIEW;
  r.preview = true;
  ASSIGN_OR_RETURN(PlanOutcome outcome, MakePlan(r));
  return *outcome.plan;
}

absl::StatusOr<v1::PlanRevisionResponse> Planner::PlanRevision(const v1::PlanRevisionRequest& request) {
  v1::PlanTrigger trigger = request.trigger() == v1::PLAN_TRIGGER_UNSPECIFIED ? v1::PLAN_TRIGGER_EXPLICIT_REVISION
                                                                              : request.trigger();
  if (trigger != v1::PLAN_TRIGGER_EXPLICIT_REVISION && trigger != v1::PLAN_TRIGGER_ROLLBACK)
    return absl::InvalidArgumentError("trigger: must be PLAN_TRIGGER_EXPLICIT_REVISION or PLAN_TRIGGER_ROLLBACK");
  if (request.approve() && request.actor().id().empty())
    return absl::InvalidArgumentError("actor.id: is required when approve is set");
  ASSIGN_OR_RETURN(v1::Application app, store_->GetApplication(request.application_id()));
  if (std::find(app.environment_ids().begin(), app.environment_ids().end(), request.environment_id()) ==
      app.environment_ids().end())
    return absl::InvalidArgumentError(absl::StrCat("environment_id: application \"", app.id(),
                                                   "\" does not deploy to environment \"", request.environment_id(), "\""));
  ASSIGN_OR_RETURN(v1::Environment env, store_->GetEnvironment(request.environment_id()));
  std::string ref;
  ASSIGN_OR_RETURN(std::string sha, ResolveRevision(app, request.revision(), &ref));
  if (trigger != v1::PLAN_TRIGGER_ROLLBACK) {
    ASSIGN_OR_RETURN(std::optional<std::string> gate, PromotionGate(app.id(), env, sha));
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
  ASSIGN_OR_RETURN(PlanOutcome outcome, MakePlan(r));
  v1::PlanRevisionResponse response;
  response.set_up_to_date(outcome.up_to_date);
  if (outcome.plan) *response.mutable_plan() = *outcome.plan;
  return response;
}

absl::StatusOr<std::vector<v1::Plan>> Planner::RefreshApplication(const v1::RefreshApplicationRequest& request) {
  ASSIGN_OR_RETURN(v1::Application app, store_->GetApplication(request.application_id()));
  std::vector<v1::Plan> plans;
  ASSIGN_OR_RETURN(std::string sha, repo_->ResolveRef(app.repository_id(), app.ref()));
  for (const std::string& env_id : app.environment_ids()) {
    if (!request.environment_id().empty() && env_id != request.environment_id()) continue;
    ASSIGN_OR_RETURN(v1::Environment env, store_->GetEnvironment(env_id));
    ASSIGN_OR_RETURN(std::optional<std::string> gate, PromotionGate(app.id(), env, sha));
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
    ASSIGN_OR_RETURN(PlanOutcome outcome, MakePlan(r));
    if (outcome.plan) {
      ToBasicView(*outcome.plan);
      plans.push_back(std::move(*outcome.plan));
    }
  }
  return plans;
}

absl::StatusOr<int> Planner::PlanApplications(const std::set<std::string>& app_ids, const v1::CommitRef& target,
                                              v1::PlanTrigger trigger) {
  ASSIGN_OR_RETURN(std::vector<v1::Application> apps, store_->ListApplications());
  std::map<std::string, v1::Application> graph;
  for (auto& a : apps) graph[a.id()] = std::move(a);
  ASSIGN_OR_RETURN(std::vector<v1::Environment> envs, store_->ListEnvironments());
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
      if (levels.size() <= depth) levels.resize(depth + 1);
      levels[depth].push_back(std::move(r));
    }
  }
  std::atomic<int> made{0};
  for (const std::vector<PlanRequest>& requests : levels) {
    absl::Status failed = concurrency::ParallelFor(requests.size(), plan_concurrency_, [&](size_t i) -> absl::Status {
      const PlanRequest& r = requests[i];
      // One automatic plan per (application, environment, commit,
      // definitions): a revision replayed after a restart, or already
      // planned by a refresh, is skipped.
      ASSIGN_OR_RETURN(bool done, store_->HasPlanFor(r.app.id(), r.env.id(), r.target.sha(), DefinitionKey(r.app, r.env)));
      if (done) return absl::OkStatus();
      // promoteFrom: a revision is planned here only once it was deployed
      // healthy upstream; ReportPlanResult plans it then.
      ASSIGN_OR_RETURN(std::optional<std::string> gate, PromotionGate(r.app.id(), r.env, r.target.sha()));
      if (gate) return absl::OkStatus();
      absl::StatusOr<PlanOutcome> outcome = MakePlan(r);
      if (absl::IsAlreadyExists(outcome.status())) return absl::OkStatus();  // planned concurrently
      if (!outcome.ok()) return outcome.status();
      if (outcome->plan) ++made;
      return absl::OkStatus();
    });
    // Plans of this level are kept; dependants wait for a retry.
    if (!failed.ok()) return failed;
  }
  return made.load();
}

absl::StatusOr<int> Planner::Promote(const v1::Plan& succeeded) {
  if (succeeded.trigger() != v1::PLAN_TRIGGER_NEW_REVISION && succeeded.trigger() != v1::PLAN_TRIGGER_REFRESH) return 0;
  absl::StatusOr<v1::Application> app = store_->GetApplication(succeeded.application_id());
  if (absl::IsNotFound(app.status())) return 0;
  if (!app.ok()) return app.status();
  if (!app->sync_policy().automated()) return 0;
  ASSIGN_OR_RETURN(std::vector<v1::Environment> envs, store_->ListEnvironments());
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
    absl::StatusOr<PlanOutcome> outcome = MakePlan(r);
    if (absl::IsAlreadyExists(outcome.status())) continue;
    if (!outcome.ok()) return outcome.status();
    if (outcome->plan) ++made;
  }
  return made;
}

absl::StatusOr<int> Planner::HandleRevision(const v1::Revision& revision) {
  if (revision.rejected() || revision.ref_deleted() || revision.sha().empty()) return 0;
  auto touched = [&](const std::string& root) {
    if (revision.all_paths_changed()) return true;
    for (const auto& p : revision.changed_paths())
      if (IsUnderRepoPath(p, root) || IsUnderRepoPath(root, p)) return true;
    return false;
  };
  std::set<std::string> affected;
  ASSIGN_OR_RETURN(std::vector<DeclarationSourceRecord> sources, store_->ListDeclarationSources());
  for (const auto& rec : sources) {
    if (rec.source.repository_id() != revision.repository_id() || rec.source.ref() != revision.ref()) continue;
    if (!touched(rec.source.path())) continue;
    v1::ApplyDeclarativeConfigResponse ignored;
    absl::StatusOr<std::set<std::string>> changed = Reconcile(rec.source, revision.sha(), false, SystemActor(), &ignored);
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
      *e.mutable_time() = Now();
      e.set_idempotency_key(absl::StrCat("declarative-refused/", rec.key, "/", revision.sha()));
      e.mutable_subject()->set_repository_id(revision.repository_id());
      e.mutable_subject()->set_ref(revision.ref());
      e.mutable_subject()->set_commit_sha(revision.sha());
      (*e.mutable_details()->mutable_fields())["path"].set_string_value(rec.source.path());
      absl::Status recorded = store_->RecordEvents({e});
      if (!recorded.ok() && !absl::IsAlreadyExists(recorded)) return recorded;
      continue;
    }
    affected.insert(changed->begin(), changed->end());
  }
  ASSIGN_OR_RETURN(std::vector<v1::Application> apps, store_->ListApplications());
  ASSIGN_OR_RETURN(auto inputs, store_->ListInputPaths());
  std::set<std::string> elsewhere;  // (re)declared here, deployed from another repository or ref
  for (const auto& app : apps) {
    if (app.repository_id() != revision.repository_id() || app.ref() != revision.ref()) {
      if (affected.erase(app.id()) && app.sync_policy().automated()) elsewhere.insert(app.id());
      continue;
    }
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
  ASSIGN_OR_RETURN(int made, PlanApplications(affected, target, v1::PLAN_TRIGGER_NEW_REVISION));
  if (!elsewhere.empty()) {
    ASSIGN_OR_RETURN(int more, PlanApplications(elsewhere, v1::CommitRef(), v1::PLAN_TRIGGER_REFRESH));
    made += more;
  }
  return made;
}

// ---------------------------------------------------------------------------
// Plan lifecycle

absl::StatusOr<v1::Plan> Planner::GetPlan(const std::string& id, v1::PlanView view) {
  ASSIGN_OR_RETURN(v1::Plan plan, store_->GetPlan(id));
  if (view == v1::PLAN_VIEW_BASIC) ToBasicView(plan);
  return plan;
}

absl::StatusOr<v1::ListPlansResponse> Planner::ListPlans(const v1::ListPlansRequest& request) {
  ASSIGN_OR_RETURN(int size, PageSize(request.page_size()));
  PlanFilter f;
  f.application_id = request.application_id();
  f.environment_id = request.environment_id();
  for (int s : request.states()) f.states.push_back(static_cast<v1::PlanState>(s));
  f.limit = size;
  if (!request.page_token().empty() && (!absl::SimpleAtoi(request.page_token(), &f.before_seq) || f.before_seq <= 0))
    return absl::InvalidArgumentError("page_token: not a token from ListPlans");
  ASSIGN_OR_RETURN(PlanPage page, store_->ListPlans(f));
  v1::ListPlansResponse out;
  for (auto& p : page.plans) {
    if (request.view() != v1::PLAN_VIEW_FULL) ToBasicView(p);
    *out.add_plans() = std::move(p);
  }
  if (page.more) out.set_next_page_token(absl::StrCat(page.last_seq));
  return out;
}

absl::StatusOr<v1::Plan> Planner::ApprovePlan(const std::string& id, const v1::Actor& actor, const std::string& comment) {
  if (actor.id().empty()) return absl::InvalidArgumentError("actor.id: is required");
  ASSIGN_OR_RETURN(v1::Plan current, store_->GetPlan(id));
  if (current.state() != v1::PLAN_STATE_PENDING)
    return absl::FailedPreconditionError(
        absl::StrCat("plan ", id, " is ", v1::PlanState_Name(current.state()), ", not PENDING"));
  ASSIGN_OR_RETURN(v1::Environment env, store_->GetEnvironment(current.environment_id()));
  if (current.trigger() != v1::PLAN_TRIGGER_ROLLBACK) {
    ASSIGN_OR_RETURN(std::optional<std::string> gate,
                     PromotionGate(current.application_id(), env, current.target_revision().sha()));
    if (gate) return absl::FailedPreconditionError(*gate);
  }
  v1::Plan approved = current;
  approved.set_state(v1::PLAN_STATE_APPROVED);
  ASSIGN_OR_RETURN(Hold hold, ComputeHold(approved, env));
  ASSIGN_OR_RETURN(v1::Plan plan, store_->MutatePlan(id, [&](v1::Plan& p) -> absl::StatusOr<std::vector<v1::Event>> {
    if (p.state() != v1::PLAN_STATE_PENDING)
      return absl::FailedPreconditionError(absl::StrCat("plan ", id, " is ", v1::PlanState_Name(p.state()), ", not PENDING"));
    p.set_state(v1::PLAN_STATE_APPROVED);
    v1::PlanDecision* d = p.mutable_decision();
    *d->mutable_actor() = actor;
    d->set_comment(comment);
    *d->mutable_time() = Now();
    d->set_automatic(false);
    p.set_hold_reason(hold.reason);
    p.set_hold_message(hold.message);
    *p.mutable_update_time() = Now();
    v1::Event e = MakeEvent(v1::AUDIT_ACTION_PLAN_APPROVED, actor,
                            absl::StrCat("plan ", id, " approved by ", actor.id(), comment.empty() ? "" : ": " + comment),
                            "plan-approved/" + id);
    e.mutable_subject()->set_plan_id(id);
    e.mutable_subject()->set_application_id(p.application_id());
    e.mutable_subject()->set_environment_id(p.environment_id());
    e.mutable_subject()->set_commit_sha(p.target_revision().sha());
    return std::vector<v1::Event>{e};
  }));
  notifier_->Notify();
  return plan;
}

absl::StatusOr<v1::Plan> Planner::RejectPlan(const std::string& id, const v1::Actor& actor, const std::string& comment) {
  if (actor.id().empty()) return absl::InvalidArgumentError("actor.id: is required");
  return store_->MutatePlan(id, [&](v1::Plan& p) -> absl::StatusOr<std::vector<v1::Event>> {
    if (p.state() != v1::PLAN_STATE_PENDING)
      return absl::FailedPreconditionError(absl::StrCat("plan ", id, " is ", v1::PlanState_Name(p.state()), ", not PENDING"));
    p.set_state(v1::PLAN_STATE_REJECTED);
    p.set_hold_reason(v1::HOLD_REASON_UNSPECIFIED);
    p.set_hold_message("");
    v1::PlanDecision* d = p.mutable_decision();
    *d->mutable_actor() = actor;
    d->set_comment(comment);
    *d->mutable_time() = Now();
    *p.mutable_update_time() = Now();
    v1::Event e = MakeEvent(v1::AUDIT_ACTION_PLAN_REJECTED, actor,
                            absl::StrCat("plan ", id, " rejected by ", actor.id(), comment.empty() ? "" : ": " + comment),
                            "plan-rejected/" + id);
    e.mutable_subject()->set_plan_id(id);
    e.mutable_subject()->set_application_id(p.application_id());
    e.mutable_subject()->set_environment_id(p.environment_id());
    e.mutable_subject()->set_commit_sha(p.target_revision().sha());
    return std::vector<v1::Event>{e};
  });
}

absl::StatusOr<std::vector<ReleasedPlan>> Planner::ReleasedAfter(const std::string& cursor, int limit) {
  int64_t after = 0;
  if (cursor.empty()) {
    ASSIGN_OR_RETURN(after, store_->OldestUnfinishedRelease());
  } else if (!absl::SimpleAtoi(cursor, &after) || after < 0) {
    return absl::InvalidArgumentError("cursor: not a cursor from WatchApprovedPlans");
  }
  return store_->ListReleased(after, limit);
}

absl::StatusOr<v1::AcknowledgePlanResponse> Planner::AcknowledgePlan(const v1::AcknowledgePlanRequest& request) {
  if (request.plan_id().empty()) return absl::InvalidArgumentError("plan_id: is required");
  if (request.deployment_id().empty()) return absl::InvalidArgumentError("deployment_id: is required");
  v1::AcknowledgePlanResponse response;
  ASSIGN_OR_RETURN(v1::Plan plan, store_->MutatePlan(request.plan_id(), [&](v1::Plan& p) -> absl::StatusOr<std::vector<v1::Event>> {
    if (p.state() == v1::PLAN_STATE_APPROVED && p.hold_reason() == v1::HOLD_REASON_UNSPECIFIED) {
      p.set_state(v1::PLAN_STATE_EXECUTING);
      p.set_deployment_id(request.deployment_id());
      *p.mutable_update_time() = Now();
      response.set_proceed(true);
    } else if (p.state() == v1::PLAN_STATE_EXECUTING && p.deployment_id() == request.deployment_id()) {
      response.set_proceed(true);  // idempotent retry
    } else if (p.state() == v1::PLAN_STATE_EXECUTING || !p.deployment_id().empty()) {
      response.set_reason(absl::StrCat("plan already claimed by deployment ", p.deployment_id()));
    } else if (p.state() == v1::PLAN_STATE_APPROVED) {
      response.set_reason("plan is held: " + p.hold_message());
    } else {
      response.set_reason(absl::StrCat("plan is ", v1::PlanState_Name(p.state()),
                                       p.superseded_by_plan_id().empty() ? "" : " by " + p.superseded_by_plan_id()));
    }
    return std::vector<v1::Event>{};
  }));
  response.set_state(plan.state());
  return response;
}

absl::StatusOr<v1::Plan> Planner::ReportPlanResult(const v1::ReportPlanResultRequest& request) {
  const v1::PlanState state = request.state();
  if (state != v1::PLAN_STATE_EXECUTING && state != v1::PLAN_STATE_SUCCEEDED && state != v1::PLAN_STATE_FAILED &&
      state != v1::PLAN_STATE_ROLLED_BACK)
    return absl::InvalidArgumentError("state: must be EXECUTING, SUCCEEDED, FAILED or ROLLED_BACK");
  if (request.deployment_id().empty()) return absl::InvalidArgumentError("deployment_id: is required");
  ASSIGN_OR_RETURN(v1::Plan plan, store_->MutatePlan(request.plan_id(), [&](v1::Plan& p) -> absl::StatusOr<std::vector<v1::Event>> {
    if (p.deployment_id() != request.deployment_id())
      return absl::FailedPreconditionError(absl::StrCat("plan ", p.id(), " is not executed by deployment ",
                                                        request.deployment_id()));
    if (p.state() == state) return std::vector<v1::Event>{};  // repeated report
    if (p.state() != v1::PLAN_STATE_EXECUTING)
      return absl::FailedPreconditionError(absl::StrCat("plan ", p.id(), " is ", v1::PlanState_Name(p.state()),
                                                        "; only an EXECUTING plan takes a result"));
    p.set_state(state);
    if (state == v1::PLAN_STATE_FAILED || state == v1::PLAN_STATE_ROLLED_BACK)
      p.mutable_failure()->set_message(request.message());
    *p.mutable_update_time() = Now();
    return std::vector<v1::Event>{};
  }));
  notifier_->Notify();
  if (plan.state() == v1::PLAN_STATE_SUCCEEDED) {
    absl::StatusOr<int> promoted = Promote(plan);
    if (!promoted.ok()) logging::Warn("planning the promotion failed", {{"plan", plan.id()}, {"error", promoted.status().ToString()}});
  }
  if (IsTerminal(plan.state())) {
    absl::StatusOr<int> released = ReevaluateHolds();
    if (!released.ok()) logging::Warn("re-evaluating held plans failed", {{"error", released.status().ToString()}});
  }
  ToBasicView(plan);
  return plan;
}

absl::StatusOr<int> Planner::ReevaluateHolds() {
  ASSIGN_OR_RETURN(std::vector<v1::Plan> plans, store_->ListUnreleased());
  std::map<std::string, v1::Environment> envs;
  std::map<std::string, WindowDecision> windows;  // one evaluation per environment per pass
  int released = 0;
  for (const v1::Plan& plan : plans) {
    if (!envs.count(plan.environment_id())) {
      absl::StatusOr<v1::Environment> env = store_->GetEnvironment(plan.environment_id());
      if (!env.ok()) continue;
      envs[plan.environment_id()] = *env;
    }
    ASSIGN_OR_RETURN(Hold hold, ComputeHold(plan, envs[plan.environment_id()], &windows));
    if (hold.reason == plan.hold_reason() && hold.message == plan.hold_message()) continue;
    absl::StatusOr<v1::Plan> updated = store_->MutatePlan(plan.id(), [&](v1::Plan& p) -> absl::StatusOr<std::vector<v1::Event>> {
      if (p.state() != plan.state()) return absl::AbortedError("plan changed state meanwhile");
      p.set_hold_reason(hold.reason);
      p.set_hold_message(hold.message);
      *p.mutable_update_time() = Now();
      return std::vector<v1::Event>{};
    });
    if (!updated.ok()) {
      if (absl::IsAborted(updated.status())) continue;
      return updated.status();
    }
    if (updated->state() == v1::PLAN_STATE_APPROVED && updated->hold_reason() == v1::HOLD_REASON_UNSPECIFIED) ++released;
  }
  if (released > 0) notifier_->Notify();
  return released;
}

}  // namespace ferry::planner
