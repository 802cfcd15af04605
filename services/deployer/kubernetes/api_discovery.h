#pragma once

#include <map>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "common/concurrency/mutex.h"
#include "services/deployer/kubernetes/kube_client.h"

namespace ferry::deployer::kubernetes {

// What the API server serves for one apiVersion and kind.
struct ApiResource {
  std::string group;     // "" for the core group.
  std::string version;   // "v1".
  std::string kind;      // "Deployment".
  std::string resource;  // "deployments".
  bool namespaced = false;

  std::string ApiVersion() const { return group.empty() ? version : group + "/" + version; }
  // "/api/v1" or "/apis/<group>/<version>".
  std::string Prefix() const;
  // The collection or object path; `ns` is ignored for cluster-scoped kinds.
  std::string Path(const std::string& ns, const std::string& name) const;
};

// Which resource serves a kind, from the API server's discovery documents
// (/api/v1, /apis, /apis/<group>/<version>), cached per group and version.
// A kind not in the cache is looked up again (a CRD established since).
// Thread-safe.
class ApiDiscovery {
 public:
  explicit ApiDiscovery(KubeClient* client) : client_(client) {}

  // NOT_FOUND when the server does not serve `kind` in `api_version`;
  // UNAVAILABLE when it cannot be asked.
  absl::StatusOr<ApiResource> Resolve(const std::string& api_version, const std::string& kind);
  // The group's preferred version (for an object known only by group and kind).
  absl::StatusOr<ApiResource> ResolveGroupKind(const std::string& group, const std::string& kind);

 private:
  absl::StatusOr<std::map<std::string, ApiResource>> Fetch(const std::string& group_version);

  KubeClient* const client_;
  ferry::Mutex mu_;
  // groupVersion -> kind -> resource.
  std::map<std::string, std::map<std::string, ApiResource>> cache_ ABSL_GUARDED_BY(mu_);
  // group -> its preferred groupVersion.
  std::map<std::string, std::string> preferred_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::deployer::kubernetes
