#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/base/thread_annotations.h"
#include "common/concurrency/mutex.h"
#include "services/deployer/kubernetes/api_discovery.h"
#include "services/deployer/kubernetes/kube_client.h"
#include "services/deployer/kubernetes/watch_cache.h"
#include "services/deployer/target.h"

namespace ferry::deployer::kubernetes {

// Labels Ferry puts on every object it applies.
inline constexpr char kApplicationLabel[] = "app.ferry.dev/application";
inline constexpr char kEnvironmentLabel[] = "app.ferry.dev/environment";
// The field manager of Ferry's server-side applies.
inline constexpr char kFieldManager[] = "ferry";
// Annotation holding the sha256 of the object as Ferry applied it (its
// rendered JSON): with no other manager's field, the live object is that one.
inline constexpr char kAppliedDigestAnnotation[] = "app.ferry.dev/applied-sha256";
// Annotation choosing how a pruned object's dependents go: Background
// (default), Foreground or Orphan.
inline constexpr char kDeletePropagationAnnotation[] = "ferry.dev/delete-propagation";

// The Kubernetes target: applies any object the cluster serves with
// server-side apply (field manager "ferry"), one cluster per instance.
// Thread-safe.
// - Prepare checks every object (apiVersion, kind, name; the kind is served
//   by the cluster or defined by a CRD of the same application; no namespace
//   on cluster-scoped kinds) and orders each wave: Namespaces, then CRDs and
//   the other cluster-wide kinds, then the rest (Helm's install order).
// - Apply patches with application/apply-patch+yaml, labelled with the
//   application and environment, force as the application asks; a conflict
//   with another manager fails naming the fields and managers. A CRD is
//   applied only once it is Established (waited for until the deadline); an
//   object of a kind not served yet is retried until then.
// - Delete removes an object only while Ferry still manages fields of it
//   (and only that object: uid precondition), with the propagation policy of
//   its annotation; a missing object is deleted already.
// - Observe judges drift by a server-side dry-run apply of the applied
//   object: any difference with the live object is a managed field changed
//   by someone else. Secret values are replaced by digests in everything it
//   returns.
// - Observe and Health read the live object from a WatchCache (one watch
//   per kind and namespace Ferry applied to or looked at, on Ferry's
//   application label) while its watch is fresh, else by a GET.
class KubernetesTarget final : public Target {
 public:
  // `default_namespace` is for namespaced objects that name none.
  // `max_watches` caps the watch cache (WatchCache).
  KubernetesTarget(std::unique_ptr<KubeClient> client, std::string default_namespace,
                   size_t max_watches = WatchCache::kDefaultMaxWatches);

  absl::StatusOr<std::vector<TargetObject>> Prepare(const AppScope& app, std::vector<TargetObject> objects,
                                                   const FileFetcher& fetch) override;
  absl::Status Apply(const AppScope& app, const TargetObject& desired, const TargetObject* previous,
                     absl::Time deadline, const std::atomic<bool>* cancel) override;
  absl::Status Delete(const AppScope& app, const TargetObject& applied, absl::Time deadline) override;
  ObservedObject Observe(const AppScope& app, const ObjectKey& key, const TargetObject* applied) override;
  std::pair<v1::HealthStatus, std::string> Health(const AppScope& app, const TargetObject& applied) override;
  // kube_health's FailedForGood of the live object.
  bool FailedForGood(const AppScope& app, const TargetObject& applied) override;
  // Server-side dry-run apply (dryRun=All): unforced first, so a conflict is
  // reported, then forced for the result. Server fields dropped, Secret
  // values as digests.
  absl::StatusOr<DryRunResult> DryRun(const AppScope& app, const TargetObject& desired) override;
  // A watch event of an object labelled with the application and
  // environment that is not the echo of Ferry's own apply.
  bool TakeChanged(const AppScope& app) override;

  KubeClient& client() { return *client_; }
  WatchCache& watch_cache() { return *watch_; }
  const std::string& default_namespace() const { return default_namespace_; }

 private:
  struct Located {
    ApiResource resource;
    std::string ns;  // Effective namespace ("" for cluster-scoped kinds).
    std::string name;
  };
  absl::StatusOr<Located> Locate(const nlohmann::json& doc, const ObjectKey& key);
  absl::StatusOr<Located> LocateKey(const ObjectKey& key);
  // The object as Ferry sends it: namespace filled in, labels and the digest
  // of `rendered` (the TargetObject's JSON) added.
  nlohmann::json Outgoing(const AppScope& app, nlohmann::json doc, const Located& at,
                          const std::string& rendered) const;
  // PATCH (server-side apply); `dry_run` asks for the result only.
  absl::StatusOr<KubeResponse> ServerSideApply(const Located& at, const nlohmann::json& body, bool force, bool dry_run);
  // The live object: from the watch when it is fresh, else by a GET.
  // NOT_FOUND "does not exist" when there is none; other failures as
  // UNAVAILABLE with the server's message.
  absl::StatusOr<nlohmann::json> Live(const Located& at);
  absl::Status WaitEstablished(const Located& at, absl::Time deadline, const std::atomic<bool>* cancel);

  std::unique_ptr<KubeClient> client_;
  ApiDiscovery discovery_;
  const std::string default_namespace_;
  std::unique_ptr<WatchCache> watch_;  // Declared after client_: stopped before it goes.
};

// One KubernetesTarget per cluster configuration (kubeconfig, context and
// namespace; or in-cluster and namespace), made on first use. Credentials
// are read then: a changed kubeconfig file is read again only by a new
// deployer process. Thread-safe.
class KubernetesTargetFactory final : public TargetFactory {
 public:
  // In-cluster credentials come from `account_dir` and the API server's
  // address from `service_host`/`service_port` (the pod's
  // KUBERNETES_SERVICE_HOST and _PORT, read by main).
  // `max_watches` caps each cluster's watch cache (--kube-max-watches).
  KubernetesTargetFactory(std::string account_dir, std::string service_host, std::string service_port,
                          size_t max_watches = WatchCache::kDefaultMaxWatches)
      : account_dir_(std::move(account_dir)),
        service_host_(std::move(service_host)),
        service_port_(std::move(service_port)),
        max_watches_(max_watches) {}
  absl::StatusOr<Target*> For(const v1::DeployTarget& target) override;

 private:
  const std::string account_dir_, service_host_, service_port_;
  const size_t max_watches_;
  ferry::Mutex mu_;
  std::map<std::string, std::unique_ptr<KubernetesTarget>> targets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::deployer::kubernetes
