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
      const json status = dry->value("status", json::object());
      if (status.is_object() && status.contains("planDigest") && status["planDigest"].is_string())
        (*doc)["spec"]["planDigest"] = status["planDigest"];
      break;
    }
    m.set_json(DumpJsonLossy(*doc));
  }
}

}  // namespace ferry::planner
