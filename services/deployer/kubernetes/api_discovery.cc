#include "services/deployer/kubernetes/api_discovery.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/json/json.h"

namespace ferry::deployer::kubernetes {

std::string ApiResource::Prefix() const {
  return group.empty() ? absl::StrCat("/api/", version) : absl::StrCat("/apis/", group, "/", version);
}

std::string ApiResource::Path(const std::string& ns, const std::string& name) const {
  std::string out = Prefix();
  if (namespaced && !ns.empty()) absl::StrAppend(&out, "/namespaces/", ns);
  absl::StrAppend(&out, "/", resource);
  if (!name.empty()) absl::StrAppend(&out, "/", name);
  return out;
}

absl::StatusOr<std::map<std::string, ApiResource>> ApiDiscovery::Fetch(const std::string& group_version) {
  std::string group, version = group_version;
  if (size_t slash = group_version.find('/'); slash != std::string::npos) {
    group = group_version.substr(0, slash);
    version = group_version.substr(slash + 1);
  }
  std::string path = group.empty() ? absl::StrCat("/api/", version) : absl::StrCat("/apis/", group_version);
  absl::StatusOr<KubeResponse> r = client_->Request("GET", path);
  if (!r.ok()) return r.status();
  std::map<std::string, ApiResource> out;
  if (r->code == 404) return out;
  if (r->code != 200) return KubeStatus(*r, absl::StrCat("discovery of ", group_version));
  absl::StatusOr<nlohmann::json> doc = ParseJson(r->body);
  if (!doc.ok() || !doc->is_object() || !doc->contains("resources") || !(*doc)["resources"].is_array()) {
    return absl::UnavailableError(absl::StrCat("discovery of ", group_version, ": not an APIResourceList"));
  }
  for (const nlohmann::json& res : (*doc)["resources"]) {
    if (!res.is_object() || !res.contains("name") || !res.contains("kind")) continue;
    if (!res["name"].is_string()) continue;
    std::string name = res["name"].get<std::string>();
    if (absl::StrContains(name, "/")) continue;  // Subresources (deployments/status).
    if (!res["kind"].is_string()) continue;
    bool namespaced = res.contains("namespaced") && res["namespaced"].is_boolean() && res["namespaced"].get<bool>();
    ApiResource a{group, version, res["kind"].get<std::string>(), name, namespaced};
    out.emplace(a.kind, std::move(a));
  }
  return out;
}

absl::StatusOr<ApiResource> ApiDiscovery::Resolve(const std::string& api_version, const std::string& kind) {
  {
    ferry::MutexLock l(&mu_);
    auto gv = cache_.find(api_version);
    if (gv != cache_.end()) {
      auto k = gv->second.find(kind);
      if (k != gv->second.end()) return k->second;
    }
  }
  absl::StatusOr<std::map<std::string, ApiResource>> fetched = Fetch(api_version);
  if (!fetched.ok()) return fetched.status();
  ferry::MutexLock l(&mu_);
  auto& entry = cache_[api_version];
  entry = std::move(*fetched);
  auto k = entry.find(kind);
  if (k == entry.end()) {
    return absl::NotFoundError(absl::StrCat("the cluster serves no kind ", kind, " in ", api_version));
  }
  return k->second;
}

absl::StatusOr<ApiResource> ApiDiscovery::ResolveGroupKind(const std::string& group, const std::string& kind) {
  if (group.empty()) return Resolve("v1", kind);
  std::string known;
  {
    ferry::MutexLock l(&mu_);
    auto it = preferred_.find(group);
    if (it != preferred_.end()) known = it->second;
  }
  if (!known.empty()) {
    absl::StatusOr<ApiResource> r = Resolve(known, kind);
    if (r.ok() || !absl::IsNotFound(r.status())) return r;
  }
  absl::StatusOr<KubeResponse> r = client_->Request("GET", absl::StrCat("/apis/", group));
  if (!r.ok()) return r.status();
  if (r->code == 404) return absl::NotFoundError(absl::StrCat("the cluster serves no API group ", group));
  if (r->code != 200) return KubeStatus(*r, absl::StrCat("discovery of ", group));
  absl::StatusOr<nlohmann::json> doc = ParseJson(r->body);
  if (!doc.ok() || !doc->is_object() || !doc->contains("preferredVersion") ||
      !(*doc)["preferredVersion"].is_object()) {
    return absl::UnavailableError(absl::StrCat("discovery of ", group, ": not an APIGroup"));
  }
  const nlohmann::json& gv = (*doc)["preferredVersion"]["groupVersion"];
  if (!gv.is_string()) return absl::UnavailableError(absl::StrCat("discovery of ", group, ": no preferred version"));
  {
    ferry::MutexLock l(&mu_);
    preferred_[group] = gv.get<std::string>();
  }
  return Resolve(gv.get<std::string>(), kind);
}

}  // namespace ferry::deployer::kubernetes
