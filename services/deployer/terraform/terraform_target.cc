#include "services/deployer/terraform/terraform_target.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/crypto/sha256.h"
#include "common/json/json.h"
#include "services/deployer/app_ids.h"
#include "services/deployer/secrets/secret_ref.h"

namespace ferry::deployer::terraform {
namespace {

using nlohmann::json;

constexpr size_t kMaxFiles = 1000;
constexpr size_t kMaxConfigBytes = 8 << 20;

bool VariableName(const std::string& s) {
  if (s.empty() || s.size() > 128 || !(absl::ascii_isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  for (char c : s)
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  return true;
}

std::string SchemaFor(const std::string& prefix, const std::string& env) {
  std::string out = prefix;
  for (char c : env) out.push_back(absl::ascii_isalnum(static_cast<unsigned char>(c)) ? absl::ascii_tolower(c) : '_');
  return out.substr(0, 63);  // PostgreSQL identifiers
}

// The Stack as shown and compared (the planner's differ compares the live
// document with the dry run's): without the approved plan's digest in spec
// (it changes at every plan) and, when terraform would change something,
// with top-level `plan` (the resource actions and attribute diffs) and
// `planDigest`. Not under `status`: the differ drops status. A plan without
// changes adds nothing, so it compares equal to the live document (a no-op).
json Shown(const json& doc, const json& plan_fields = json::object()) {
  json out = doc;
  if (out.contains("spec") && out["spec"].is_object()) out["spec"].erase("planDigest");
  for (const char* k : {"status", "plan", "planDigest"}) out.erase(k);
  for (auto it = plan_fields.begin(); it != plan_fields.end(); ++it) out[it.key()] = it.value();
  return out;
}

}  // namespace

absl::StatusOr<TerraformTarget::Parsed> TerraformTarget::Parse(const TargetObject& object) const {
  const std::string where = absl::StrCat(object.source_path.empty() ? "" : object.source_path + ": ", "Stack \"",
                                         object.key.name, "\"");
  if (object.key.group != kStackGroup || object.key.kind != kStackKind)
    return absl::InvalidArgumentError(absl::StrCat(object.source_path, ": ", object.key.group, "/", object.key.kind, " \"",
                                                   object.key.name, "\": the terraform target deploys only ",
                                                   kStackGroup, "/v1 ", kStackKind, " objects"));
  absl::StatusOr<json> doc = ParseJson(object.json);
  if (!doc.ok()) return absl::InvalidArgumentError(absl::StrCat(where, ": ", doc.status().message()));
  Parsed out;
  out.doc = *std::move(doc);
  if (!out.doc.is_object() || !out.doc.contains("spec") || !out.doc["spec"].is_object())
    return absl::InvalidArgumentError(absl::StrCat(where, ": spec: required"));
  const json& spec = out.doc["spec"];
  const json files = spec.value("files", json());
  if (!files.is_object() || files.empty())
    return absl::InvalidArgumentError(absl::StrCat(where, ": spec.files: a map of .tf files, not empty"));
  if (files.size() > kMaxFiles)
    return absl::InvalidArgumentError(absl::StrCat(where, ": spec.files: ", files.size(), " files, more than ", kMaxFiles));
  size_t bytes = 0;
  for (auto it = files.begin(); it != files.end(); ++it) {
    if (!it->is_string()) return absl::InvalidArgumentError(absl::StrCat(where, ": spec.files[\"", it.key(), "\"]: not text"));
    bytes += it->get_ref<const std::string&>().size();
    out.files[it.key()] = it->get<std::string>();
  }
  if (bytes > kMaxConfigBytes)
    return absl::InvalidArgumentError(absl::StrCat(where, ": spec.files: ", bytes, " bytes, more than ", kMaxConfigBytes));
  for (const char* k : {"variables", "secretVariables"}) {
    if (!spec.contains(k)) continue;
    if (!spec[k].is_object()) return absl::InvalidArgumentError(absl::StrCat(where, ": spec.", k, ": not a map"));
    for (auto it = spec[k].begin(); it != spec[k].end(); ++it)
      if (!VariableName(it.key()))
        return absl::InvalidArgumentError(absl::StrCat(where, ": spec.", k, ": \"", it.key(), "\" is not a variable name"));
  }
  if (spec.contains("secretVariables")) {
    for (auto it = spec["secretVariables"].begin(); it != spec["secretVariables"].end(); ++it) {
      std::string field = absl::StrCat("spec.secretVariables.", it.key(), ".secretRef");
      if (!it->is_object() || !it->contains("secretRef"))
        return absl::InvalidArgumentError(absl::StrCat(where, ": ", field, ": required"));
      absl::StatusOr<secrets::SecretRef> ref = secrets::ParseSecretRef((*it)["secretRef"], field);
      if (!ref.ok()) return absl::InvalidArgumentError(absl::StrCat(where, ": ", ref.status().message()));
      if (ref->source == secrets::SecretRef::Source::kEncryptedFile)
        return absl::InvalidArgumentError(absl::StrCat(where, ": ", field,
                                                       ": encryptedFile is not supported for Terraform variables "
                                                       "(use file, env or vault)"));
    }
  }
  const json digest = spec.value("planDigest", json());
  if (digest.is_string()) out.plan_digest = digest.get<std::string>();
  return out;
}

absl::StatusOr<Stack> TerraformTarget::StackFor(const AppScope& app, const json& doc) const {
  RunnerSettings s = options_.base;
  if (!s.pg_conn_str.empty()) s.pg_schema = SchemaFor(options_.schema_prefix, app.environment_id);
  const json& spec = doc["spec"];
  if (spec.contains("variables")) {
    for (auto it = spec["variables"].begin(); it != spec["variables"].end(); ++it)
      s.variables[it.key()] = it->is_string() ? it->get<std::string>() : DumpJsonLossy(*it);
  }
  if (spec.contains("secretVariables")) {
    if (options_.secrets == nullptr)
      return absl::FailedPreconditionError("spec.secretVariables: this deployer has no secret sources configured");
    for (auto it = spec["secretVariables"].begin(); it != spec["secretVariables"].end(); ++it) {
      std::string field = absl::StrCat("spec.secretVariables.", it.key(), ".secretRef");
      absl::StatusOr<secrets::SecretRef> ref = secrets::ParseSecretRef((*it)["secretRef"], field);
      if (!ref.ok()) return ref.status();
      absl::StatusOr<std::string> value = options_.secrets->Resolve(*ref);
      if (!value.ok()) return absl::Status(value.status().code(), absl::StrCat(field, ": ", value.status().message()));
      s.secret_variables[it.key()] = *std::move(value);
    }
  }
  return Stack(std::move(s));
}

absl::StatusOr<std::vector<TargetObject>> TerraformTarget::Prepare(const AppScope& app, std::vector<TargetObject> objects,
                                                                  const FileFetcher& fetch) {
  (void)app;
  (void)fetch;
  for (const TargetObject& o : objects) {
    absl::StatusOr<Parsed> p = Parse(o);
    if (!p.ok()) return p.status();
  }
  return objects;
}

absl::StatusOr<DryRunResult> TerraformTarget::DryRun(const AppScope& app, const TargetObject& desired) {
  absl::StatusOr<Parsed> p = Parse(desired);
  if (!p.ok()) return p.status();
  absl::StatusOr<Stack> stack = StackFor(app, p->doc);
  if (!stack.ok()) return stack.status();
  absl::StatusOr<SavedPlan> plan = stack->Plan(p->files);
  if (!plan.ok()) return plan.status();
  absl::Status put = options_.plans->Put(app.application_id, app.environment_id, plan->digest, plan->plan_file);
  if (!put.ok()) return put;
  // The plan and its digest only when there is something to apply: a plan
  // without changes then compares equal to the live stack (a no-op).
  json fields = json::object();
  if (plan->view.has_changes()) fields = {{"plan", plan->view.ToJson()}, {"planDigest", plan->digest}};
  DryRunResult out;
  out.json = DumpJsonLossy(Shown(p->doc, fields));
  return out;
}

absl::Status TerraformTarget::Apply(const AppScope& app, const TargetObject& desired, const TargetObject* previous,
                                    absl::Time deadline, const std::atomic<bool>* cancel) {
  (void)previous;
  (void)cancel;  // a running apply is never interrupted: that would leave the state locked and half written
  absl::StatusOr<Parsed> p = Parse(desired);
  if (!p.ok()) return p.status();
  absl::StatusOr<Stack> stack = StackFor(app, p->doc);
  if (!stack.ok()) return stack.status();
  const std::string& a = app.application_id;
  const std::string& e = app.environment_id;
  std::string digest = p->plan_digest;
  if (digest.empty())
    return absl::FailedPreconditionError(absl::StrCat(
        "Stack \"", desired.key.name, "\" of ", AppKey(a, e),
        " carries no approved Terraform plan (spec.planDigest): plan it (refresh the application) and approve "
        "that plan; Ferry never applies without one"));
  absl::StatusOr<bool> applied = options_.plans->WasApplied(a, e, digest);
  if (!applied.ok()) return applied.status();
  std::string plan_file;
  if (*applied) {
    // The same configuration again (self-heal, which the drift controller
    // starts only when the environment allows it, or a rollback): a fresh
    // plan of it, applied as made.
    absl::StatusOr<SavedPlan> fresh = stack->Plan(p->files);
    if (!fresh.ok()) return fresh.status();
    absl::Status put = options_.plans->Put(a, e, fresh->digest, fresh->plan_file);
    if (!put.ok()) return put;
    digest = fresh->digest;
    plan_file = std::move(fresh->plan_file);
  } else {
    absl::StatusOr<std::string> file = options_.plans->Get(a, e, digest);
    if (!file.ok())
      return absl::FailedPreconditionError(absl::StrCat("the approved Terraform plan ", digest,
                                                        " is no longer kept: re-plan and approve again"));
    plan_file = *std::move(file);
  }
  {
    ferry::MutexLock l(&mu_);
    attempted_[AppKey(a, e)] = digest;
  }
  // The deployment's deadline bounds the apply too (never past the settings' own timeout).
  absl::Duration left = deadline - (options_.clock != nullptr ? options_.clock->Now() : absl::Now());
  if (left <= absl::ZeroDuration())
    return absl::DeadlineExceededError(absl::StrCat("no time left to apply Terraform plan ", digest));
  absl::StatusOr<ApplyResult> result = stack->Apply(p->files, plan_file, digest, left);
  if (!result.ok()) return result.status();
  absl::Status mark = options_.plans->MarkApplied(a, e, digest);
  if (!mark.ok()) return mark;
  ferry::MutexLock l(&mu_);
  last_applied_[AppKey(a, e)] = digest;
  return absl::OkStatus();
}

std::string TerraformTarget::LastAppliedDigest(const AppScope& app) {
  ferry::MutexLock l(&mu_);
  auto it = last_applied_.find(AppKey(app.application_id, app.environment_id));
  return it == last_applied_.end() ? "" : it->second;
}

std::string TerraformTarget::TakeAppliedPlanDigest(const AppScope& app) {
  ferry::MutexLock l(&mu_);
  auto it = attempted_.find(AppKey(app.application_id, app.environment_id));
  if (it == attempted_.end()) return "";
  std::string out = std::move(it->second);
  attempted_.erase(it);
  return out;
}

absl::Status TerraformTarget::Delete(const AppScope& app, const TargetObject& applied, absl::Time deadline) {
  (void)deadline;
  return absl::FailedPreconditionError(absl::StrCat(
      "Stack \"", applied.key.name, "\" of ", AppKey(app.application_id, app.environment_id),
      ": Ferry does not destroy infrastructure by pruning; remove the resources from the configuration and "
      "deploy that plan, then remove the application"));
}

ObservedObject TerraformTarget::Observe(const AppScope& app, const ObjectKey& key, const TargetObject* applied) {
  ObservedObject out;
  // A stack always "exists" (its state may be empty): the planner then asks
  // for a dry run, which is the Terraform plan.
  out.exists = true;
  if (applied == nullptr) {
    out.live_json = DumpJsonLossy(json{{"apiVersion", std::string(kStackGroup) + "/v1"},
                                       {"kind", kStackKind},
                                       {"metadata", {{"name", key.name}}},
                                       {"spec", json::object()}});
    out.health = v1::HEALTH_STATUS_MISSING;
    out.health_message = "not applied yet";
    return out;
  }
  absl::StatusOr<Parsed> p = Parse(*applied);
  absl::StatusOr<Stack> stack = p.ok() ? StackFor(app, p->doc) : absl::StatusOr<Stack>(p.status());
  absl::StatusOr<DriftResult> drift = stack.ok() ? stack->CheckDrift(p->files) : absl::StatusOr<DriftResult>(stack.status());
  if (!drift.ok()) {
    out.live_json = p.ok() ? DumpJsonLossy(Shown(p->doc)) : applied->json;
    out.health = v1::HEALTH_STATUS_UNKNOWN;
    out.health_message = absl::StrCat("terraform drift check failed: ", drift.status().message());
    out.drift = v1::DRIFT_STATUS_UNKNOWN;
    out.drift_message = out.health_message;
    return out;
  }
  // What is applied; what terraform would change now (drift) is in the
  // drift message, and in the next dry run's plan.
  out.live_json = DumpJsonLossy(Shown(p->doc));
  out.health = v1::HEALTH_STATUS_HEALTHY;
  out.health_message = "applied";
  if (drift->drifted) {
    out.drift = v1::DRIFT_STATUS_MODIFIED;
    out.drift_message = drift->view.Text();
  } else {
    out.drift = v1::DRIFT_STATUS_IN_SYNC;
  }
  return out;
}

std::pair<v1::HealthStatus, std::string> TerraformTarget::Health(const AppScope& app, const TargetObject& applied) {
  (void)app;
  (void)applied;
  // Terraform has no health of its own: an apply that completed is healthy.
  return {v1::HEALTH_STATUS_HEALTHY, "applied"};
}

absl::StatusOr<Target*> TerraformTargetFactory::For(const v1::DeployTarget& target) {
  if (target.kind() != v1::TARGET_KIND_TERRAFORM || !target.has_terraform())
    return absl::InvalidArgumentError("target: not a terraform target (kind TARGET_KIND_TERRAFORM with terraform config)");
  // One target per backend, run-as user and limits: variables come with
  // each Stack and do not make another.
  v1::TerraformTargetConfig key_config = target.terraform();
  key_config.clear_variables();
  key_config.clear_secret_variables();
  key_config.clear_applications();
  if (key_config.state() == v1::TERRAFORM_STATE_UNSPECIFIED) key_config.set_state(v1::TERRAFORM_STATE_PG);
  const std::string key = key_config.SerializeAsString();
  ferry::MutexLock lock(&mu_);
  auto it = targets_.find(key);
  if (it != targets_.end()) return it->second.get();
  TerraformTargetOptions o = defaults_;
  if (key_config.state() == v1::TERRAFORM_STATE_PG) {
    if (o.base.pg_conn_str.empty())
      return absl::FailedPreconditionError(
          "target.terraform.state: pg, but this deployer has no --terraform-state-url (the PostgreSQL database "
          "of Terraform state); configure it, or set state: configured to use the configuration's own backend");
  } else if (key_config.state() == v1::TERRAFORM_STATE_CONFIGURED) {
    o.base.pg_conn_str.clear();
  } else {
    return absl::InvalidArgumentError("target.terraform.state: must be pg or configured");
  }
  v1::HostTargetConfig as_host;  // whom terraform runs as: the host target's rules
  if (key_config.has_run_as()) *as_host.mutable_run_as() = key_config.run_as();
  absl::StatusOr<host::WorkloadIdentity> who = workloads_.For(as_host);
  if (!who.ok())
    return absl::InvalidArgumentError(absl::StrReplaceAll(who.status().message(), {{"target.host.", "target.terraform."}}));
  o.base.uid = who->uid;
  o.base.gid = who->gid;
  if (key_config.memory_limit_mb() > 0) o.base.memory_limit_mb = key_config.memory_limit_mb();
  if (key_config.cpu_limit_seconds() > 0) o.base.cpu_seconds = key_config.cpu_limit_seconds();
  if (key_config.timeout_seconds() > 0) o.base.timeout = absl::Seconds(static_cast<int64_t>(key_config.timeout_seconds()));
  auto made = std::make_unique<TerraformTarget>(std::move(o));
  Target* out = made.get();
  targets_[key] = std::move(made);
  return out;
}

}  // namespace ferry::deployer::terraform
