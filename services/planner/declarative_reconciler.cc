#include "services/planner/declarative_reconciler.h"

#include <google/protobuf/util/message_differencer.h>

#include <map>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/logging/logger.h"
#include "common/status/status_macros.h"
#include "services/planner/catalog.h"
#include "services/planner/declarative_config.h"
#include "services/planner/repo_path.h"
#include "services/planner/validation.h"

namespace ferry::planner {
namespace {

using google::protobuf::util::MessageDifferencer;

std::string SourceKey(const v1::DeclarationSource& s) { return absl::StrCat(s.repository_id(), ":", s.ref(), ":", s.path()); }

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

// Whether two specs would render and deploy alike: notifications change who
// hears about a deployment, not what is deployed, so they plan nothing.
bool SameDeployment(v1::Application a, v1::Application b) {
  a.clear_notifications();
  b.clear_notifications();
  return SameSpec(a, b);
}

}  // namespace

absl::StatusOr<std::set<std::string>> DeclarativeReconciler::Reconcile(const v1::DeclarationSource& source, const std::string& commit,
                                                         bool dry_run, const v1::Actor& actor,
                                                         v1::ApplyDeclarativeConfigResponse* response) {
  absl::StatusOr<std::vector<TreeEntry>> file = repo_->ReadTree(source.repository_id(), commit, source.path(), false);
  if (!file.ok()) {
    if (absl::IsNotFound(file.status()))
      return absl::InvalidArgumentError(absl::StrCat("source.path: \"", source.path(), "\" does not exist at commit ", ShortSha(commit)));
    return file.status();
  }
  if (file->size() != 1 || file->front().path != source.path() || file->front().type != v1::CONTENT_ENTRY_TYPE_FILE)
    return absl::InvalidArgumentError(absl::StrCat("source.path: \"", source.path(), "\" is not a file"));
  ASSIGN_OR_RETURN(DeclaredConfig declared,
                   ParseDeclarativeConfig(file->front().data, source.path(), source.repository_id(), source.ref(),
                                          limits_, windows_));
  const std::string key = SourceKey(source);
  v1::DeclarationSource stamp = source;
  stamp.set_commit(commit);

  ASSIGN_OR_RETURN(std::vector<v1::Environment> env_list, catalog_->ListEnvironments());
  ASSIGN_OR_RETURN(std::vector<v1::Application> app_list, catalog_->ListApplications());
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
    absl::Status s = ValidateEnvironment(e, new_envs, windows_);
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
  // Environments whose target changed (a Terraform variable, a root folder,
  // a namespace): what their applications' plans hold changes with it.
  std::set<std::string> retargeted_envs;
  auto record = [&](const std::string& kind, const std::string& id, v1::ObjectAction action) {
    v1::DeclarativeChange* c = response->add_changes();
    c->set_kind(kind);
    c->set_id(id);
    c->set_action(action);
  };
  auto event = [&](int action, const std::string& what, const std::string& id, bool app) {
    v1::Event e = events_.Make(action, actor, absl::StrCat(what, " (from ", DescribeSource(source), " at ", ShortSha(commit), ")"),
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
      *e.mutable_create_time() = events_.Now();
      *e.mutable_update_time() = events_.Now();
      change.create_environments.push_back(e);
      record("Environment", e.id(), v1::OBJECT_ACTION_CREATE);
      event(v1::AUDIT_ACTION_ENVIRONMENT_CREATED, "environment " + e.id() + " created", e.id(), false);
    } else if (!SameSpec(old->second, e)) {
      *e.mutable_create_time() = old->second.create_time();
      *e.mutable_update_time() = events_.Now();
      change.update_environments.push_back(e);
      if (!MessageDifferencer::Equals(old->second.target(), e.target())) retargeted_envs.insert(e.id());
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
      *a.mutable_create_time() = events_.Now();
      *a.mutable_update_time() = events_.Now();
      change.create_applications.push_back(a);
      changed_apps.insert(a.id());
      record("Application", a.id(), v1::OBJECT_ACTION_CREATE);
      event(v1::AUDIT_ACTION_APPLICATION_CREATED, "application " + a.id() + " created", a.id(), true);
    } else if (!SameSpec(old->second, a)) {
      *a.mutable_create_time() = old->second.create_time();
      *a.mutable_update_time() = events_.Now();
      change.update_applications.push_back(a);
      if (!SameDeployment(old->second, a)) changed_apps.insert(a.id());
      record("Application", a.id(), v1::OBJECT_ACTION_UPDATE);
      event(v1::AUDIT_ACTION_APPLICATION_UPDATED, "application " + a.id() + " updated", a.id(), true);
    } else {
      *a.mutable_create_time() = old->second.create_time();
      *a.mutable_update_time() = old->second.update_time();
      // Stamps the new commit; already stamped with it (the same commit
      // reconciled again: ApplyDeclarativeConfig, then its revision), there
      // is nothing to write (10,000 rows rewritten otherwise; issue #23).
      if (!MessageDifferencer::Equals(old->second.declared_by(), a.declared_by()))
        change.update_applications.push_back(a);
      record("Application", a.id(), v1::OBJECT_ACTION_NOOP);
    }
  }
  for (const auto& [id, a] : new_apps) {
    for (const std::string& env : a.environment_ids()) {
      if (retargeted_envs.count(env)) changed_apps.insert(id);
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
  change.close_open_plan = [this, actor](v1::Plan& p) { return RejectForDeletion(p, actor, events_); };
  RETURN_IF_ERROR(catalog_->ApplyConfigChange(change));
  return changed_apps;
}

absl::StatusOr<v1::ApplyDeclarativeConfigResponse> DeclarativeReconciler::ApplyDeclarativeConfig(
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
  RETURN_IF_ERROR(gate_->CheckSignaturePolicy({.call = "ApplyDeclarativeConfig",
                                               .actor = actor,
                                               .repository_id = source.repository_id(),
                                               .ref = source.ref(),
                                               .sha = commit,
                                               .application_id = "",
                                               .environment_id = "",
                                               .path = source.path()}));
  v1::ApplyDeclarativeConfigResponse response;
  response.set_commit(commit);
  ASSIGN_OR_RETURN(std::set<std::string> changed, Reconcile(source, commit, request.dry_run(), actor, &response));
  if (!request.dry_run() && !changed.empty()) {
    // New and changed applications get a plan at the tip of their own ref.
    absl::Status s = replan_(changed);
    if (!s.ok()) logging::Warn("planning reconciled applications failed", {{"error", s.ToString()}});
  }
  return response;
}

}  // namespace ferry::planner
