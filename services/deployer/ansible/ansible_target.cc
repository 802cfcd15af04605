#include "services/deployer/ansible/ansible_target.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/json/json.h"
#include "common/status/status_macros.h"
#include "services/deployer/secrets/secret_ref.h"

namespace ferry::deployer::ansible {
namespace {

using nlohmann::json;

std::string ScopeKey(const AppScope& app) { return app.application_id + "/" + app.environment_id; }

std::string Where(const TaskResult& t) { return t.path.empty() ? "" : absl::StrCat(" (", t.path, ")"); }

std::string FailureText(const TaskResult& t) {
  return absl::StrCat("task \"", t.task, "\"", Where(t), " ", StatusName(t.status), " on ", t.host, ": ", t.message);
}

json Lines(const std::string& text) {
  json out = json::array();
  if (text.empty()) return out;
  for (absl::string_view l : absl::StrSplit(text, '\n')) out.push_back(std::string(l));
  if (!out.empty() && out.back() == "") out.erase(out.size() - 1);
  return out;
}

// One task and host that would change, as the plan shows it.
json ChangeJson(const TaskResult& t) {
  json c = {{"host", t.host}, {"task", t.task}, {"action", t.action}};
  if (!t.path.empty()) c["path"] = t.path;
  if (!t.diff_before.empty() || !t.diff_after.empty()) {
    json d = {{"before", Lines(t.diff_before)}, {"after", Lines(t.diff_after)}};
    if (!t.diff_header.empty()) d["file"] = t.diff_header;
    c["diff"] = std::move(d);
  }
  return c;
}

// The object without what a target adds, with `changes` set.
json WithChanges(json object, json changes) {
  if (!object.is_object()) object = json::object();
  object["changes"] = std::move(changes);
  return object;
}

json Skeleton(const ObjectKey& key) {
  return {{"apiVersion", "ansible.ferry.dev/v1"}, {"kind", key.kind}, {"metadata", {{"name", key.name}}}};
}

absl::StatusOr<std::string> ResolveRef(const secrets::SecretResolver* resolver, const v1::SecretRef& ref,
                                       const std::string& field) {
  if (resolver == nullptr) return absl::InvalidArgumentError(absl::StrCat(field, ": this deployer has no secret sources"));
  json j;
  switch (ref.source_case()) {
    case v1::SecretRef::kFile: j = {{"file", ref.file()}}; break;
    case v1::SecretRef::kEnv: j = {{"env", ref.env()}}; break;
    case v1::SecretRef::kVault: j = {{"vault", {{"path", ref.vault().path()}, {"field", ref.vault().field()}}}}; break;
    default: return absl::InvalidArgumentError(absl::StrCat(field, ": needs file, env or vault"));
  }
  absl::StatusOr<secrets::SecretRef> parsed = secrets::ParseSecretRef(j, field);
  if (!parsed.ok()) return parsed.status();
  return resolver->Resolve(*parsed);
}

}  // namespace

absl::StatusOr<PlaybookOutcome> AnsibleTarget::RunOf(const AppScope& app, const std::string& object_json, bool check,
                                                     bool health, absl::Duration time_left,
                                                     std::string* playbook_out) const {
  absl::StatusOr<json> object = ParseJson(object_json);
  if (!object.ok()) return object.status();
  RETURN_IF_ERROR(PlaybookRunner::CheckSpec(*object));
  const json& spec = (*object)["spec"];
  PlaybookRun run;
  run.spec = &spec;
  run.playbook = spec.value(health ? "healthPlaybook" : "playbook", "");
  run.check = check;
  run.environment_id = app.environment_id;
  run.time_left = time_left;
  if (playbook_out != nullptr) *playbook_out = run.playbook;
  return runner_->Run(run);
}

absl::StatusOr<std::vector<TargetObject>> AnsibleTarget::Prepare(const AppScope& app, std::vector<TargetObject> objects,
                                                                const FileFetcher& fetch) {
  (void)app;
  (void)fetch;
  for (const TargetObject& o : objects) {
    absl::StatusOr<json> object = ParseJson(o.json);
    if (!object.ok()) return absl::InvalidArgumentError(absl::StrCat(o.source_path, ": ", object.status().message()));
    absl::Status s = PlaybookRunner::CheckSpec(*object);
    if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat(o.source_path, ": ", o.key.ToString(), ": ", s.message()));
  }
  return objects;
}

absl::Status AnsibleTarget::Apply(const AppScope& app, const TargetObject& desired, const TargetObject* previous,
                                  absl::Time deadline, const std::atomic<bool>* cancel) {
  (void)previous;
  (void)cancel;  // a run ends by itself or by its timeout; it is never cut in the middle of a task
  std::string playbook;
  absl::StatusOr<PlaybookOutcome> run = RunOf(app, desired.json, false, false, deadline - clock_->Now(), &playbook);
  if (!run.ok()) return run.status();
  std::vector<TaskStep> steps;
  for (const TaskResult& t : run->results.tasks) {
    TaskStep step;
    step.object = ObjectKey{"ansible.ferry.dev", "AnsibleTask", t.host, t.task};
    step.action = t.status == TaskResult::Status::kChanged ? v1::OBJECT_ACTION_UPDATE : v1::OBJECT_ACTION_NOOP;
    switch (t.status) {
      case TaskResult::Status::kFailed:
      case TaskResult::Status::kUnreachable:
        step.result = v1::STEP_RESULT_FAILED;
        step.message = FailureText(t);
        break;
      case TaskResult::Status::kSkipped:
        step.result = v1::STEP_RESULT_SKIPPED;
        step.message = absl::StrCat("skipped", Where(t));
        break;
      default:
        step.result = v1::STEP_RESULT_SUCCEEDED;
        step.message = absl::StrCat(StatusName(t.status), Where(t));
    }
    steps.push_back(std::move(step));
  }
  {
    MutexLock lock(&mu_);
    steps_[ScopeKey(app)] = std::move(steps);
  }
  if (const TaskResult* failed = run->results.FirstFailure()) return absl::InternalError(FailureText(*failed));
  if (run->exit_code != 0) {
    return absl::InternalError(absl::StrCat("ansible-playbook ", playbook, " exited with ", run->exit_code));
  }
  return absl::OkStatus();
}

std::vector<TaskStep> AnsibleTarget::TakeTaskSteps(const AppScope& app) {
  MutexLock lock(&mu_);
  auto it = steps_.find(ScopeKey(app));
  if (it == steps_.end()) return {};
  std::vector<TaskStep> out = std::move(it->second);
  steps_.erase(it);
  return out;
}

absl::Status AnsibleTarget::Delete(const AppScope& app, const TargetObject& applied, absl::Time deadline) {
  (void)app;
  (void)applied;
  (void)deadline;
  return absl::OkStatus();  // what a playbook made stays: Ansible has no inverse of a run
}

ObservedObject AnsibleTarget::Observe(const AppScope& app, const ObjectKey& key, const TargetObject* applied) {
  ObservedObject out;
  out.exists = true;  // the hosts are there whether or not a playbook ran on them
  if (applied == nullptr) {
    out.live_json = DumpJsonLossy(WithChanges(Skeleton(key), json::array()));
    return out;
  }
  absl::StatusOr<json> object = ParseJson(applied->json);
  out.live_json = DumpJsonLossy(WithChanges(object.ok() ? *object : Skeleton(key), json::array()));
  absl::StatusOr<PlaybookOutcome> run = RunOf(app, applied->json, true, false, absl::InfiniteDuration(), nullptr);
  if (!run.ok()) {
    out.health = v1::HEALTH_STATUS_UNKNOWN;
    out.health_message = std::string(run.status().message());
    out.drift = v1::DRIFT_STATUS_UNKNOWN;
    out.drift_message = absl::StrCat("ansible-playbook --check failed: ", run.status().message());
    return out;
  }
  if (const TaskResult* failed = run->results.FirstFailure()) {
    out.health = v1::HEALTH_STATUS_DEGRADED;
    out.health_message = FailureText(*failed);
    out.drift = v1::DRIFT_STATUS_UNKNOWN;
    out.drift_message = absl::StrCat("ansible-playbook --check: ", FailureText(*failed));
    return out;
  }
  out.health = v1::HEALTH_STATUS_HEALTHY;
  std::vector<const TaskResult*> changed = run->results.Changed();
  if (changed.empty()) {
    out.drift = v1::DRIFT_STATUS_IN_SYNC;
    return out;
  }
  std::vector<std::string> what;
  for (const TaskResult* t : changed) what.push_back(absl::StrCat(t->host, ": ", t->task, Where(*t)));
  out.drift = v1::DRIFT_STATUS_MODIFIED;
  out.drift_message = absl::StrCat(changed.size(), changed.size() == 1 ? " task" : " tasks",
                                   " would change (ansible-playbook --check): ", absl::StrJoin(what, "; "));
  return out;
}

std::pair<v1::HealthStatus, std::string> AnsibleTarget::Health(const AppScope& app, const TargetObject& applied) {
  absl::StatusOr<json> object = ParseJson(applied.json);
  if (!object.ok() || !object->contains("spec") || !(*object)["spec"].is_object() ||
      !(*object)["spec"].contains("healthPlaybook")) {
    return {v1::HEALTH_STATUS_HEALTHY, "the playbook ran without a failed host (no health.yml)"};
  }
  std::string playbook;
  absl::StatusOr<PlaybookOutcome> run = RunOf(app, applied.json, false, true, absl::InfiniteDuration(), &playbook);
  if (!run.ok()) return {v1::HEALTH_STATUS_DEGRADED, std::string(run.status().message())};
  if (const TaskResult* failed = run->results.FirstFailure())
    return {v1::HEALTH_STATUS_DEGRADED, absl::StrCat(playbook, ": ", FailureText(*failed))};
  return {v1::HEALTH_STATUS_HEALTHY, absl::StrCat(playbook, " passed on every host")};
}

absl::StatusOr<DryRunResult> AnsibleTarget::DryRun(const AppScope& app, const TargetObject& desired) {
  absl::StatusOr<json> object = ParseJson(desired.json);
  if (!object.ok()) return object.status();
  DryRunResult out;
  absl::StatusOr<PlaybookOutcome> run = RunOf(app, desired.json, true, false, absl::InfiniteDuration(), nullptr);
  json result = WithChanges(*object, json::array());
  if (!run.ok()) {
    // Shown in the plan: the apply would meet the same refusal.
    result["checkError"] = std::string(run.status().message());
  } else {
    for (const TaskResult* t : run->results.Changed()) result["changes"].push_back(ChangeJson(*t));
    json failures = json::array();
    for (const TaskResult& t : run->results.tasks) {
      if (t.status == TaskResult::Status::kFailed || t.status == TaskResult::Status::kUnreachable)
        failures.push_back(FailureText(t));
    }
    if (!failures.empty()) result["checkFailures"] = std::move(failures);
  }
  out.json = DumpJsonLossy(result);
  return out;
}

absl::StatusOr<Target*> AnsibleTargetFactory::For(const v1::DeployTarget& target) {
  if (target.kind() != v1::TARGET_KIND_ANSIBLE || !target.has_ansible())
    return absl::InvalidArgumentError("target: not an ansible target (kind TARGET_KIND_ANSIBLE with ansible config)");
  const std::string key = target.ansible().SerializeAsString();
  MutexLock lock(&mu_);
  auto it = targets_.find(key);
  if (it != targets_.end()) return it->second.get();
  v1::HostTargetConfig as_host;  // whom runs go as: the host target's rules
  if (target.ansible().has_run_as()) *as_host.mutable_run_as() = target.ansible().run_as();
  absl::StatusOr<host::WorkloadIdentity> who = workloads_.For(as_host);
  if (!who.ok()) {
    return absl::InvalidArgumentError(absl::StrReplaceAll(who.status().message(), {{"target.host.", "target.ansible."}}));
  }
  const secrets::SecretResolver* resolver = secrets_;
  auto runner = std::make_unique<PlaybookRunner>(
      options_, target.ansible(), *who,
      [resolver](const v1::SecretRef& ref, const std::string& field) { return ResolveRef(resolver, ref, field); });
  auto made = std::make_unique<AnsibleTarget>(std::move(runner), clock_);
  Target* out = made.get();
  targets_[key] = std::move(made);
  return out;
}

}  // namespace ferry::deployer::ansible
