#include "services/deployer/terraform/terraform_target.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
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

// The Stack as shown and compared: without the approved plan's digest (it
// changes at every plan), with `status`.
json Shown(const json& doc, const json& status) {
  json out = doc;
  if (out.contains("spec") && out["spec"].is_object()) out["spec"].erase("planDigest");
  out.erase("status");
  out["status"] = status;
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
  json status = {{"plan", plan->view.ToJson()}};
  // The digest only when there is something to apply: a plan without
  // changes then compares equal to the live stack (a no-op).
  if (plan->view.has_changes()) status["planDigest"] = plan->digest;
  DryRunResult out;
  out.json = DumpJsonLossy(Shown(p->doc, status));
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
  // The deployment's deadline bounds the apply too (never past the settings' own timeout).
  absl::Duration left = deadline - absl::Now();
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
    out.live_json = applied->json;
    out.health = v1::HEALTH_STATUS_UNKNOWN;
    out.health_message = absl::StrCat("terraform drift check failed: ", drift.status().message());
    out.drift = v1::DRIFT_STATUS_UNKNOWN;
    out.drift_message = out.health_message;
    return out;
  }
  out.live_json = DumpJsonLossy(Shown(p->doc, json{{"plan", drift->view.ToJson()}}));
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

}  // namespace ferry::deployer::terraform
