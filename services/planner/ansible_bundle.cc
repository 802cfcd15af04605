#include "services/planner/ansible_bundle.h"

#include <map>

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/json/json.h"
#include "common/text/utf8.h"
#include "services/planner/parse_limits.h"
#include "services/planner/render_failure.h"
#include "services/planner/repo_path.h"

namespace ferry::planner {

absl::StatusOr<v1::Manifest> AnsibleBundle(const v1::Application& app, const std::vector<TreeEntry>& files,
                                           size_t max_bytes) {
  const std::string prefix = app.path().empty() ? "" : app.path() + "/";
  std::map<std::string, const TreeEntry*> by_path;
  for (const TreeEntry& e : files)
    if (IsUnderRepoPath(e.path, app.path()) && e.path.size() > prefix.size()) by_path[e.path.substr(prefix.size())] = &e;
  nlohmann::json spec_files = nlohmann::json::object();
  size_t bytes = 0;
  for (const auto& [rel, entry] : by_path) {
    const TreeEntry* file = entry;
    if (file->type == v1::CONTENT_ENTRY_TYPE_SYMLINK) {
      absl::StatusOr<std::string> target = ResolveRepoPath(RepoDirName(file->path), file->symlink_target);
      auto it = target.ok() && IsUnderRepoPath(*target, app.path()) && target->size() > prefix.size()
                    ? by_path.find(target->substr(prefix.size()))
                    : by_path.end();
      if (it == by_path.end() || it->second->type != v1::CONTENT_ENTRY_TYPE_FILE) {
        return RenderFailure(absl::StatusCode::kInvalidArgument,
                             absl::StrCat("symlink ", file->path, " -> ", file->symlink_target,
                                          " does not point to a file of the application folder (render method ansible)"),
                             file->path);
      }
      file = it->second;
    }
    if (file->type != v1::CONTENT_ENTRY_TYPE_FILE) continue;
    bytes += file->data.size() + rel.size();
    if (bytes > max_bytes) {
      return RenderFailure(absl::StatusCode::kResourceExhausted,
                           absl::StrCat("the ansible folder \"", app.path(), "\" holds more than ", max_bytes,
                                        " bytes of files (at ", file->path, "; ", kMaxManifestBytesFlag, ")"),
                           file->path);
    }
    if (text::IsValidUtf8(file->data)) {
      spec_files[rel] = absl::StrSplit(file->data, '\n');
    } else {
      spec_files[rel] = nlohmann::json{{"base64", absl::Base64Escape(file->data)}};
    }
  }
  std::string playbook;
  for (const char* name : {"site.yml", "site.yaml", "playbook.yml", "playbook.yaml"}) {
    if (spec_files.contains(name)) {
      playbook = name;
      break;
    }
  }
  if (playbook.empty()) {
    return RenderFailure(absl::StatusCode::kInvalidArgument,
                         absl::StrCat("no site.yml or playbook.yml in \"", app.path(), "\" (render method ansible)"),
                         prefix + "site.yml");
  }
  nlohmann::json spec = {{"playbook", playbook}, {"files", std::move(spec_files)}};
  for (const char* name : {"health.yml", "health.yaml"}) {
    if (spec["files"].contains(name)) {
      spec["healthPlaybook"] = name;
      break;
    }
  }
  nlohmann::json object = {{"apiVersion", "ansible.ferry.dev/v1"},
                           {"kind", "AnsiblePlaybook"},
                           {"metadata", {{"name", app.id()}}},
                           {"spec", std::move(spec)}};
  v1::Manifest m;
  m.mutable_object()->set_group("ansible.ferry.dev");
  m.mutable_object()->set_kind("AnsiblePlaybook");
  m.mutable_object()->set_name(app.id());
  m.set_json(DumpJsonLossy(object));
  m.set_source_path(prefix + playbook);
  return m;
}

}  // namespace ferry::planner
