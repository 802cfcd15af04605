#include "services/planner/terraform_plans.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/json/json.h"
#include "services/planner/render_failure.h"

namespace ferry::planner {
namespace {

using nlohmann::json;

constexpr char kGroup[] = "terraform.ferry.dev";
constexpr char kKind[] = "Stack";

bool IsStack(const v1::ObjectRef& o) { return o.group() == kGroup && o.kind() == kKind; }

bool IsText(const std::string& data) {
  // NUL bytes or invalid UTF-8 (DumpJson refuses it): not text.
  return data.find('\0') == std::string::npos && DumpJson(json(data)).ok();
}

}  // namespace

absl::StatusOr<v1::Manifest> RenderTerraformStack(const std::string& app_id, const std::string& app_path,
                                                  const std::vector<TreeEntry>& files,
                                                  const std::map<std::string, std::string>& variables,
                                                  const json& secret_variables) {
  std::string prefix = app_path.empty() ? "" : app_path + "/";
  json file_map = json::object();
  bool has_tf = false;
  for (const TreeEntry& e : files) {
    if (!absl::StartsWith(e.path, prefix)) continue;
    std::string rel = e.path.substr(prefix.size());
    if (rel == "ferry.yaml" || rel == "ferry.yml" || absl::StartsWith(rel, ".terraform/") || rel.find("/.terraform/") != std::string::npos)
      continue;
    if (e.type != v1::CONTENT_ENTRY_TYPE_FILE)
      return RenderFailure(absl::StatusCode::kInvalidArgument,
                           absl::StrCat(e.path, ": only regular files are taken into a Terraform configuration"), e.path, 0);
    if (!IsText(e.data))
      return RenderFailure(absl::StatusCode::kInvalidArgument,
                           absl::StrCat(e.path, ": not UTF-8 text; a Terraform configuration is carried as text"), e.path, 0);
    if (absl::EndsWith(rel, ".tf") || absl::EndsWith(rel, ".tf.json")) has_tf = true;
    file_map[rel] = e.data;
  }
  if (!has_tf)
    return RenderFailure(absl::StatusCode::kInvalidArgument,
                         absl::StrCat(app_path.empty() ? "the repository root" : app_path,
                                      ": render terraform needs a folder with .tf or .tf.json files"),
                         app_path, 0);
  json spec = {{"files", file_map}};
  if (!variables.empty()) spec["variables"] = variables;
  if (secret_variables.is_object() && !secret_variables.empty()) spec["secretVariables"] = secret_variables;
  json doc = {{"apiVersion", std::string(kGroup) + "/v1"}, {"kind", kKind}, {"metadata", {{"name", app_id}}}, {"spec", spec}};
  v1::Manifest m;
  m.mutable_object()->set_group(kGroup);
  m.mutable_object()->set_kind(kKind);
  m.mutable_object()->set_name(app_id);
  m.set_json(DumpJsonLossy(doc));
  m.set_source_path(prefix + "main.tf");
  return m;
}

void PinTerraformPlans(std::vector<v1::Manifest>& manifests, const v1::LiveState& live) {
  for (v1::Manifest& m : manifests) {
    if (!IsStack(m.object())) continue;
    absl::StatusOr<json> doc = ParseJson(m.json());
    if (!doc.ok() || !doc->is_object() || !doc->contains("spec") || !(*doc)["spec"].is_object()) continue;
    (*doc)["spec"].erase("planDigest");
    for (const v1::LiveObject& lo : live.objects()) {
      if (!IsStack(lo.object()) || lo.object().name() != m.object().name() ||
          lo.object().namespace_() != m.object().namespace_() || lo.dry_run_json().empty())
        continue;
      absl::StatusOr<json> dry = ParseJson(lo.dry_run_json());
      if (!dry.ok() || !dry->is_object()) break;
      if (dry->contains("planDigest") && (*dry)["planDigest"].is_string())
        (*doc)["spec"]["planDigest"] = (*dry)["planDigest"];
      break;
    }
    m.set_json(DumpJsonLossy(*doc));
  }
}

namespace {

json SecretRefJson(const v1::SecretRef& ref) {
  switch (ref.source_case()) {
    case v1::SecretRef::kFile:
      return {{"file", ref.file()}};
    case v1::SecretRef::kEnv:
      return {{"env", ref.env()}};
    case v1::SecretRef::kVault:
      return {{"vault", {{"path", ref.vault().path()}, {"field", ref.vault().field()}}}};
    default:
      return json::object();
  }
}

}  // namespace

void AddTerraformVariables(std::vector<v1::Manifest>& manifests, const std::string& app_id,
                           const v1::DeployTarget& target) {
  if (target.kind() != v1::TARGET_KIND_TERRAFORM || !target.has_terraform()) return;
  const v1::TerraformTargetConfig& t = target.terraform();
  std::map<std::string, std::string> plain(t.variables().begin(), t.variables().end());
  std::map<std::string, v1::SecretRef> secret(t.secret_variables().begin(), t.secret_variables().end());
  auto own = t.applications().find(app_id);
  if (own != t.applications().end()) {
    // The application's own win over the environment's, a plain one over a
    // secret one of the same name and the other way round.
    for (const auto& [k, v] : own->second.variables()) {
      plain[k] = v;
      secret.erase(k);
    }
    for (const auto& [k, v] : own->second.secret_variables()) {
      secret[k] = v;
      plain.erase(k);
    }
  }
  for (v1::Manifest& m : manifests) {
    if (!IsStack(m.object())) continue;
    absl::StatusOr<json> doc = ParseJson(m.json());
    if (!doc.ok() || !doc->is_object() || !doc->contains("spec") || !(*doc)["spec"].is_object()) continue;
    json& spec = (*doc)["spec"];
    spec.erase("variables");
    spec.erase("secretVariables");
    if (!plain.empty()) spec["variables"] = plain;
    if (!secret.empty()) {
      json refs = json::object();
      for (const auto& [k, ref] : secret) refs[k] = {{"secretRef", SecretRefJson(ref)}};
      spec["secretVariables"] = refs;
    }
    m.set_json(DumpJsonLossy(*doc));
  }
}

absl::Status TerraformDryRunFailure(const std::vector<v1::Manifest>& manifests, const v1::LiveState& live) {
  for (const v1::Manifest& m : manifests) {
    if (!IsStack(m.object())) continue;
    const v1::LiveObject* found = nullptr;
    for (const v1::LiveObject& lo : live.objects()) {
      if (IsStack(lo.object()) && lo.object().name() == m.object().name() &&
          lo.object().namespace_() == m.object().namespace_()) {
        found = &lo;
        break;
      }
    }
    if (found != nullptr && !found->dry_run_error().empty())
      return RenderFailure(absl::StatusCode::kFailedPrecondition,
                           absl::StrCat("terraform plan of Stack \"", m.object().name(), "\" failed: ",
                                        found->dry_run_error()),
                           m.source_path());
    if (found == nullptr || found->dry_run_json().empty())
      return RenderFailure(absl::StatusCode::kUnavailable,
                           absl::StrCat("no Terraform plan of Stack \"", m.object().name(),
                                        "\": the deployer did not plan it (unreachable, or the configuration is "
                                        "larger than a plan request carries); refresh the application when it answers"),
                           m.source_path());
  }
  return absl::OkStatus();
}

}  // namespace ferry::planner
