#include "services/planner/kustomize_batch.h"

#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/json/json.h"
#include "services/planner/bounded_yaml_reader.h"
#include "services/planner/repo_path.h"

namespace ferry::planner {
namespace {

using nlohmann::json;

bool IsKustomizationFile(const std::string& path) {
  std::string base = path.substr(path.rfind('/') + 1);
  return base == "kustomization.yaml" || base == "kustomization.yml" || base == "Kustomization";
}

// More than one YAML document (a line "---" or "..." after content).
bool SeveralDocuments(const std::string& text) {
  bool content = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StartsWith(line, "---") || absl::StartsWith(line, "...")) {
      if (content) return true;
      continue;
    }
    absl::string_view t = absl::StripLeadingAsciiWhitespace(line);
    if (!t.empty() && t[0] != '#') content = true;
  }
  return false;
}

// "" when `text` is one strategic-merge patch (a YAML map): it cannot
// rename what it patches (kustomize keeps the target's name unless
// allowNameChange). A JSON 6902 patch (a list of operations) can.
std::string StrategicMergeObstacle(const std::string& text, const std::string& where, const ParseLimits& limits) {
  if (SeveralDocuments(text)) return absl::StrCat(where, ": a patch of several documents");
  BoundedYamlReader reader(limits, limits.max_manifest_bytes);
  absl::StatusOr<json> patch = reader.Read(text, 1);
  if (!patch.ok()) return absl::StrCat(where, ": ", patch.status().message());
  if (!patch->is_object()) return absl::StrCat(where, ": not a strategic-merge patch (JSON 6902 patches may rename)");
  return "";
}

}  // namespace

bool BatchSafeKustomizationField(const std::string& field) {
  static const std::set<std::string> kSafe = {
      "apiVersion", "kind",   "metadata", "resources", "bases",   "components", "namespace",
      "commonLabels", "labels", "commonAnnotations", "images", "replicas", "patches", "patchesStrategicMerge"};
  return kSafe.count(field) > 0;
}

std::string BatchObstacle(const std::vector<TreeEntry>& files, const ParseLimits& limits) {
  std::map<std::string, const TreeEntry*> by_path;
  for (const TreeEntry& e : files) {
    by_path[e.path] = &e;
    if (absl::StrContains(e.data, kBatchMemberAnnotation) || absl::StrContains(e.symlink_target, kBatchMemberAnnotation))
      return absl::StrCat(e.path, ": mentions ", kBatchMemberAnnotation);
  }
  for (const TreeEntry& e : files) {
    if (!IsKustomizationFile(e.path)) continue;
    if (e.type != v1::CONTENT_ENTRY_TYPE_FILE) return absl::StrCat(e.path, ": not a regular file");
    BoundedYamlReader reader(limits, limits.max_manifest_bytes);
    absl::StatusOr<json> k = reader.Read(e.data, 1);
    if (!k.ok()) return absl::StrCat(e.path, ": ", k.status().message());
    if (k->is_null()) continue;
    if (!k->is_object()) return absl::StrCat(e.path, ": not a map");
    const std::string dir = RepoDirName(e.path);
    // A patch file named by a kustomization: its text, or "" with `missing`.
    auto file_text = [&](const std::string& ref, bool& missing) -> std::string {
      absl::StatusOr<std::string> path = ResolveRepoPath(dir, ref);
      auto it = path.ok() ? by_path.find(*path) : by_path.end();
      missing = it == by_path.end() || it->second->type != v1::CONTENT_ENTRY_TYPE_FILE;
      return missing ? std::string() : it->second->data;
    };
    for (const auto& [field, value] : k->items()) {
      if (!BatchSafeKustomizationField(field)) return absl::StrCat(e.path, ": uses ", field);
      if (field == "patches") {
        if (!value.is_array()) return absl::StrCat(e.path, ": patches is not a list");
        for (const json& p : value) {
          if (!p.is_object()) return absl::StrCat(e.path, ": a patch is not a map");
          for (const auto& [key, v] : p.items())
            if (key != "path" && key != "patch" && key != "target")
              return absl::StrCat(e.path, ": a patch has ", key);
          std::string text;
          if (p.contains("patch") && p["patch"].is_string()) {
            text = p["patch"].get<std::string>();
          } else if (p.contains("path") && p["path"].is_string()) {
            bool missing = false;
            text = file_text(p["path"].get<std::string>(), missing);
            if (missing) return absl::StrCat(e.path, ": patch file ", p["path"].get<std::string>(), " not read");
          } else {
            return absl::StrCat(e.path, ": a patch without patch or path");
          }
          if (std::string o = StrategicMergeObstacle(text, e.path, limits); !o.empty()) return o;
        }
      } else if (field == "patchesStrategicMerge") {
        if (!value.is_array()) return absl::StrCat(e.path, ": patchesStrategicMerge is not a list");
        for (const json& p : value) {
          if (!p.is_string()) return absl::StrCat(e.path, ": a patchesStrategicMerge entry is not a string");
          // A file when one is there, else inline YAML (as kustomize reads it).
          bool missing = false;
          std::string text = file_text(p.get<std::string>(), missing);
          if (missing) text = p.get<std::string>();
          if (std::string o = StrategicMergeObstacle(text, e.path, limits); !o.empty()) return o;
        }
      }
    }
  }
  return "";
}

bool MapReferrer(const v1::ObjectRef& object) {
  const std::string& kind = object.kind();
  if (object.group() == "rbac.authorization.k8s.io") return kind == "RoleBinding" || kind == "ClusterRoleBinding";
  if (object.group() == "admissionregistration.k8s.io")
    return kind == "ValidatingWebhookConfiguration" || kind == "MutatingWebhookConfiguration";
  if (object.group().empty()) return kind == "Node";
  return false;
}

std::vector<std::pair<std::string, std::string>> BatchKustomizations(const std::vector<std::string>& app_paths,
                                                                     const std::string& repo_from_wrapper) {
  std::vector<std::pair<std::string, std::string>> out;
  std::string root = "resources:\n";
  for (size_t i = 0; i < app_paths.size(); ++i) {
    const std::string wrapper = absl::StrCat("m", i);
    absl::StrAppend(&root, "- ", wrapper, "\n");
    const std::string target = app_paths[i].empty() ? repo_from_wrapper : repo_from_wrapper + "/" + app_paths[i];
    // JSON strings are YAML: any path is quoted safely.
    out.emplace_back(absl::StrCat(wrapper, "/kustomization.yaml"),
                     absl::StrCat("resources:\n- ", DumpJsonLossy(json(target)),
                                  "\ntransformers:\n- |-\n  apiVersion: builtin\n  kind: AnnotationsTransformer\n"
                                  "  metadata:\n    name: ferry-batch-member\n  annotations:\n    ",
                                  kBatchMemberAnnotation, ": \"", i, "\"\n  fieldSpecs:\n  - path: metadata/annotations\n"
                                  "    create: true\n"));
  }
  out.emplace_back("kustomization.yaml", root);
  return out;
}

absl::StatusOr<std::vector<std::vector<v1::Manifest>>> SplitBatchOutput(std::vector<v1::Manifest> objects,
                                                                         size_t members) {
  std::vector<std::vector<v1::Manifest>> out(members);
  for (v1::Manifest& m : objects) {
    absl::StatusOr<json> object = ParseJson(m.json());
    if (!object.ok()) return absl::InternalError(absl::StrCat("batch output: ", object.status().message()));
    json* annotations = nullptr;
    if (object->is_object() && object->contains("metadata") && (*object)["metadata"].is_object() &&
        (*object)["metadata"].contains("annotations") && (*object)["metadata"]["annotations"].is_object())
      annotations = &(*object)["metadata"]["annotations"];
    size_t member = members;
    if (annotations != nullptr && annotations->contains(kBatchMemberAnnotation) &&
        (*annotations)[kBatchMemberAnnotation].is_string()) {
      const std::string n = (*annotations)[kBatchMemberAnnotation].get<std::string>();
      if (!n.empty() && n.size() < 10 && n.find_first_not_of("0123456789") == std::string::npos) member = std::stoul(n);
    }
    if (member >= members)
      return absl::InternalError(absl::StrCat("batch output: ", m.object().kind(), " ", m.object().name(),
                                              " has no member annotation"));
    annotations->erase(kBatchMemberAnnotation);
    if (annotations->empty()) (*object)["metadata"].erase("annotations");
    absl::StatusOr<std::string> text = DumpJson(*object);
    if (!text.ok()) return absl::InternalError(absl::StrCat("batch output: ", text.status().message()));
    m.set_json(*std::move(text));
    out[member].push_back(std::move(m));
  }
  return out;
}

}  // namespace ferry::planner
