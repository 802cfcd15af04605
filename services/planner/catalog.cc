#include "services/planner/catalog.h"

#include <google/protobuf/util/field_mask_util.h>

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/api/page_size.h"
#include "common/concurrency/retry_aborted.h"
#include "common/status/status_macros.h"
#include "services/planner/validation.h"

namespace ferry::planner {
namespace {

using google::protobuf::util::FieldMaskUtil;

// Applications read at a time by a ListApplications filtered by repository
// or environment (most rows read may not match).
constexpr int kFilteredListChunk = 500;

}  // namespace

std::string DescribeSource(const v1::DeclarationSource& s) {
  return absl::StrCat(s.path(), " of repository ", s.repository_id(), " (", s.ref(), ")");
}

std::vector<v1::Event> RejectForDeletion(v1::Plan& plan, const v1::Actor& actor, const PlannerEvents& events) {
  plan.set_state(v1::PLAN_STATE_REJECTED);
  plan.set_hold_reason(v1::HOLD_REASON_UNSPECIFIED);
  plan.set_hold_message("");
  v1::PlanDecision* d = plan.mutable_decision();
  *d->mutable_actor() = actor.id().empty() ? SystemActor() : actor;
  d->set_comment("application deleted");
  *d->mutable_time() = events.Now();
  d->set_automatic(false);
  *plan.mutable_update_time() = events.Now();
  v1::Event e = events.Make(v1::AUDIT_ACTION_PLAN_REJECTED, d->actor(),
                            absl::StrCat("plan ", plan.id(), " rejected: application ", plan.application_id(), " deleted"),
                            "plan-rejected/" + plan.id());
  e.mutable_subject()->set_plan_id(plan.id());
  e.mutable_subject()->set_application_id(plan.application_id());
  e.mutable_subject()->set_environment_id(plan.environment_id());
  return {e};
}

absl::StatusOr<v1::Application> Catalog::CreateApplication(v1::Application app, const v1::Actor& actor) {
  app.clear_declared_by();
  app.clear_status();
  ASSIGN_OR_RETURN(std::vector<v1::Environment> envs, catalog_->ListEnvironments());
  std::set<std::string> env_ids;
  for (const auto& e : envs) env_ids.insert(e.id());
  RETURN_IF_ERROR(ValidateApplication(app, env_ids));
  ASSIGN_OR_RETURN(std::vector<v1::Application> apps, catalog_->ListApplications());
  std::map<std::string, v1::Application> graph;
  for (auto& a : apps) graph[a.id()] = a;
  if (graph.count(app.id())) return absl::AlreadyExistsError(absl::StrCat("application \"", app.id(), "\" already exists"));
  graph[app.id()] = app;
  RETURN_IF_ERROR(ValidateDependsOn(graph));
  *app.mutable_create_time() = events_.Now();
  *app.mutable_update_time() = events_.Now();
  ConfigChange change;
  change.create_applications.push_back(app);
  v1::Event e = events_.Make(v1::AUDIT_ACTION_APPLICATION_CREATED, actor, "application " + app.id() + " created",
                          "application-created/" + app.id());
  e.mutable_subject()->set_application_id(app.id());
  e.mutable_subject()->set_repository_id(app.repository_id());
  change.events.push_back(e);
  RETURN_IF_ERROR(catalog_->ApplyConfigChange(change));
  return app;
}

absl::StatusOr<v1::Application> Catalog::GetApplication(const std::string& id) {
  ASSIGN_OR_RETURN(v1::Application app, catalog_->GetApplication(id));
  for (const std::string& env : app.environment_ids()) {
    v1::ApplicationEnvironmentStatus* st = app.add_status();
    st->set_environment_id(env);
    PlanFilter f;
    f.application_id = id;
    f.environment_id = env;
    f.limit = 1;
    ASSIGN_OR_RETURN(PlanPage latest, plans_->ListPlans(f));
    f.states = {v1::PLAN_STATE_SUCCEEDED};
    ASSIGN_OR_RETURN(PlanPage succeeded, plans_->ListPlans(f));
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

absl::StatusOr<v1::ListApplicationsResponse> Catalog::ListApplications(const v1::ListApplicationsRequest& request) {
  ASSIGN_OR_RETURN(int size, api::PageSize(request.page_size()));
  // Read from the page token on, a chunk at a time, until the page and one
  // more match (there is a next page) or the applications end: a page costs
  // its own rows, not every application (the notifier pages through all of
  // them every minute; issue #23). A filtered listing reads bigger chunks.
  const bool filtered = !request.repository_id().empty() || !request.environment_id().empty();
  const int chunk = filtered ? std::max(size + 1, kFilteredListChunk) : size + 1;
  v1::ListApplicationsResponse out;
  std::string after = request.page_token();
  while (true) {
    ASSIGN_OR_RETURN(std::vector<v1::Application> apps, catalog_->ListApplicationsAfter(after, chunk));
    for (auto& a : apps) {
      after = a.id();
      if (!request.repository_id().empty() && a.repository_id() != request.repository_id()) continue;
      if (!request.environment_id().empty() &&
          std::find(a.environment_ids().begin(), a.environment_ids().end(), request.environment_id()) ==
              a.environment_ids().end())
        continue;
      if (out.applications_size() == size) {
        out.set_next_page_token(out.applications(size - 1).id());
        return out;
      }
      *out.add_applications() = std::move(a);
    }
    if (static_cast<int>(apps.size()) < chunk) return out;
  }
}

absl::StatusOr<v1::Application> Catalog::UpdateApplication(const v1::Application& update,
                                                           const google::protobuf::FieldMask& mask,
                                                           const v1::Actor& actor) {
  // Merged into the stored spec, which must not change meanwhile: if it
  // did, merge again into the new one.
  return concurrency::RetryWhileAborted([&] { return MergeApplicationUpdate(update, mask, actor); });
}

absl::StatusOr<v1::Application> Catalog::MergeApplicationUpdate(const v1::Application& update,
                                                                const google::protobuf::FieldMask& mask,
                                                                const v1::Actor& actor) {
  static const std::set<std::string> kMutable = {"repository_id", "ref", "path", "render_method", "helm",
                                                 "environment_ids", "sync_policy", "depends_on", "health_timeout",
                                                 "ignore_differences", "checks", "notifications"};
  for (const auto& p : mask.paths())
    if (!kMutable.count(p))
      return absl::InvalidArgumentError(absl::StrCat("update_mask: \"", p, "\" is not a mutable application field"));
  ASSIGN_OR_RETURN(v1::Application app, catalog_->GetApplication(update.id()));
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
  ASSIGN_OR_RETURN(std::vector<v1::Environment> envs, catalog_->ListEnvironments());
  std::set<std::string> env_ids;
  for (const auto& e : envs) env_ids.insert(e.id());
  RETURN_IF_ERROR(ValidateApplication(app, env_ids));
  ASSIGN_OR_RETURN(std::vector<v1::Application> apps, catalog_->ListApplications());
  std::map<std::string, v1::Application> graph;
  for (auto& a : apps) graph[a.id()] = a;
  graph[app.id()] = app;
  RETURN_IF_ERROR(ValidateDependsOn(graph));
  *app.mutable_update_time() = events_.Now();
  ConfigChange change;
  change.update_applications.push_back(app);
  change.expected_applications[app.id()] = read;
  v1::Event e = events_.Make(v1::AUDIT_ACTION_APPLICATION_UPDATED, actor, "application " + app.id() + " updated",
                          "application-updated/" + app.id());
  e.mutable_subject()->set_application_id(app.id());
  change.events.push_back(e);
  RETURN_IF_ERROR(catalog_->ApplyConfigChange(change));
  return app;
}

absl::Status Catalog::DeleteApplication(const std::string& id, const v1::Actor& actor) {
  ASSIGN_OR_RETURN(v1::Application app, catalog_->GetApplication(id));
  if (app.has_declared_by()) {
    return absl::FailedPreconditionError(absl::StrCat("application \"", id, "\" is declared in ",
                                                      DescribeSource(app.declared_by()), "; remove it from that file"));
  }
  ASSIGN_OR_RETURN(std::vector<v1::Application> apps, catalog_->ListApplications());
  for (const auto& a : apps)
    for (const auto& dep : a.depends_on())
      if (dep == id)
        return absl::FailedPreconditionError(
            absl::StrCat("application \"", id, "\" is a dependency of \"", a.id(), "\" (depends_on)"));
  ConfigChange change;
  change.delete_applications.push_back(id);
  change.close_open_plan = [this, actor](v1::Plan& p) { return RejectForDeletion(p, actor, events_); };
  v1::Event e = events_.Make(v1::AUDIT_ACTION_APPLICATION_DELETED, actor, "application " + id + " deleted",
                          "application-deleted/" + id);
  e.mutable_subject()->set_application_id(id);
  change.events.push_back(e);
  return catalog_->ApplyConfigChange(change);
}

absl::StatusOr<v1::Environment> Catalog::CreateEnvironment(v1::Environment env, const v1::Actor& actor) {
  env.clear_declared_by();
  ASSIGN_OR_RETURN(std::vector<v1::Environment> envs, catalog_->ListEnvironments());
  std::map<std::string, v1::Environment> all;
  for (auto& e : envs) all[e.id()] = e;
  if (all.count(env.id())) return absl::AlreadyExistsError(absl::StrCat("environment \"", env.id(), "\" already exists"));
  all[env.id()] = env;
  RETURN_IF_ERROR(ValidateEnvironment(env, all, windows_));
  *env.mutable_create_time() = events_.Now();
  *env.mutable_update_time() = events_.Now();
  ConfigChange change;
  change.create_environments.push_back(env);
  v1::Event e = events_.Make(v1::AUDIT_ACTION_ENVIRONMENT_CREATED, actor, "environment " + env.id() + " created",
                          "environment-created/" + env.id());
  e.mutable_subject()->set_environment_id(env.id());
  change.events.push_back(e);
  RETURN_IF_ERROR(catalog_->ApplyConfigChange(change));
  return env;
}

absl::StatusOr<v1::Environment> Catalog::GetEnvironment(const std::string& id) { return catalog_->GetEnvironment(id); }

absl::StatusOr<v1::ListEnvironmentsResponse> Catalog::ListEnvironments(const v1::ListEnvironmentsRequest& request) {
  ASSIGN_OR_RETURN(int size, api::PageSize(request.page_size()));
  ASSIGN_OR_RETURN(std::vector<v1::Environment> envs, catalog_->ListEnvironments());
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

absl::StatusOr<v1::Environment> Catalog::UpdateEnvironment(const v1::Environment& update,
                                                           const google::protobuf::FieldMask& mask,
                                                           const v1::Actor& actor) {
  // Merged into the stored spec, which must not change meanwhile: if it
  // did, merge again into the new one.
  return concurrency::RetryWhileAborted([&] { return MergeEnvironmentUpdate(update, mask, actor); });
}

absl::StatusOr<v1::Environment> Catalog::MergeEnvironmentUpdate(const v1::Environment& update,
                                                                const google::protobuf::FieldMask& mask,
                                                                const v1::Actor& actor) {
  static const std::set<std::string> kMutable = {"target", "approval", "sync_windows", "promote_from", "deployer_group",
                                                 "required_checks"};
  for (const auto& p : mask.paths())
    if (!kMutable.count(p))
      return absl::InvalidArgumentError(absl::StrCat("update_mask: \"", p, "\" is not a mutable environment field"));
  ASSIGN_OR_RETURN(v1::Environment env, catalog_->GetEnvironment(update.id()));
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
  ASSIGN_OR_RETURN(std::vector<v1::Environment> envs, catalog_->ListEnvironments());
  std::map<std::string, v1::Environment> all;
  for (auto& e : envs) all[e.id()] = e;
  all[env.id()] = env;
  RETURN_IF_ERROR(ValidateEnvironment(env, all, windows_));
  *env.mutable_update_time() = events_.Now();
  ConfigChange change;
  change.update_environments.push_back(env);
  change.expected_environments[env.id()] = read;
  v1::Event e = events_.Make(v1::AUDIT_ACTION_ENVIRONMENT_UPDATED, actor, "environment " + env.id() + " updated",
                          "environment-updated/" + env.id());
  e.mutable_subject()->set_environment_id(env.id());
  change.events.push_back(e);
  RETURN_IF_ERROR(catalog_->ApplyConfigChange(change));
  return env;
}

absl::Status Catalog::DeleteEnvironment(const std::string& id, const v1::Actor& actor) {
  ASSIGN_OR_RETURN(v1::Environment env, catalog_->GetEnvironment(id));
  if (env.has_declared_by()) {
    return absl::FailedPreconditionError(absl::StrCat("environment \"", id, "\" is declared in ",
                                                      DescribeSource(env.declared_by()), "; remove it from that file"));
  }
  ASSIGN_OR_RETURN(std::vector<v1::Environment> envs, catalog_->ListEnvironments());
  for (const auto& e : envs)
    if (e.promote_from() == id)
      return absl::FailedPreconditionError(absl::StrCat("environment \"", id, "\" is promote_from of \"", e.id(), "\""));
  ASSIGN_OR_RETURN(std::vector<v1::Application> apps, catalog_->ListApplications());
  for (const auto& a : apps)
    for (const auto& e : a.environment_ids())
      if (e == id)
        return absl::FailedPreconditionError(
            absl::StrCat("environment \"", id, "\" is still used by application \"", a.id(), "\""));
  ConfigChange change;
  change.delete_environments.push_back(id);
  v1::Event e = events_.Make(v1::AUDIT_ACTION_ENVIRONMENT_DELETED, actor, "environment " + id + " deleted",
                          "environment-deleted/" + id);
  e.mutable_subject()->set_environment_id(id);
  change.events.push_back(e);
  return catalog_->ApplyConfigChange(change);
}

}  // namespace ferry::planner
