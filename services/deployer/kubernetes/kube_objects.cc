#include "services/deployer/kubernetes/kube_objects.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/json/json.h"

namespace ferry::deployer::kubernetes {

int InstallRank(const std::string& group, const std::string& kind) {
  // Helm's InstallOrder (pkg/releaseutil/kind_sorter.go), core and
  // well-known groups only; custom kinds go last.
  static const char* const kOrder[] = {
      "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy", "PodDisruptionBudget",
      "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass", "PersistentVolume",
      "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding",
      "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service", "DaemonSet", "Pod",
      "ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob",
      "IngressClass", "Ingress", "APIService"};
  static const std::set<std::string> kKnownGroups = {"",
                                                     "apps",
                                                     "batch",
                                                     "policy",
                                                     "networking.k8s.io",
                                                     "rbac.authorization.k8s.io",
                                                     "storage.k8s.io",
                                                     "apiextensions.k8s.io",
                                                     "apiregistration.k8s.io",
                                                     "autoscaling"};
  constexpr int kCount = sizeof(kOrder) / sizeof(kOrder[0]);
  if (kKnownGroups.count(group) == 0) return kCount + 1;
  for (int i = 0; i < kCount; ++i) {
    if (kind == kOrder[i]) return i;
  }
  return kCount;
}

std::string ConflictMessage(const std::string& status_body) {
  absl::StatusOr<nlohmann::json> status = ParseJson(status_body);
  if (!status.ok() || !status->is_object()) return "conflict (no Status from the server)";
  std::vector<std::string> parts;
  auto details = status->find("details");
  if (details != status->end() && details->is_object()) {
    auto causes = details->find("causes");
    if (causes != details->end() && causes->is_array()) {
      for (const nlohmann::json& c : *causes) {
        if (!c.is_object()) continue;
        std::string field = c.contains("field") && c["field"].is_string() ? c["field"].get<std::string>() : "";
        std::string msg = c.contains("message") && c["message"].is_string() ? c["message"].get<std::string>() : "";
        parts.push_back(field.empty() ? msg : absl::StrCat(field, " (", msg, ")"));
      }
    }
  }
  if (parts.empty()) {
    auto msg = status->find("message");
    return msg != status->end() && msg->is_string() ? msg->get<std::string>() : "conflict";
  }
  return absl::StrCat("conflict: ", absl::StrJoin(parts, "; "));
}

nlohmann::json WithoutServerFields(nlohmann::json object) {
  if (!object.is_object()) return object;
  object.erase("status");
  auto meta = object.find("metadata");
  if (meta != object.end() && meta->is_object()) {
    for (const char* f : {"managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink"}) {
      meta->erase(f);
    }
  }
  return object;
}

std::vector<std::string> DifferentFields(const nlohmann::json& live, const nlohmann::json& expected) {
  std::set<std::string> paths;
  for (const nlohmann::json& op : nlohmann::json::diff(live, expected)) {
    if (op.is_object() && op.contains("path") && op["path"].is_string()) paths.insert(op["path"].get<std::string>());
  }
  return {paths.begin(), paths.end()};
}

bool OnlyAppliedBy(const nlohmann::json& live, const std::string& manager, const std::string& annotation,
                   const std::string& digest) {
  if (!live.is_object()) return false;
  auto meta = live.find("metadata");
  if (meta == live.end() || !meta->is_object()) return false;
  auto ann = meta->find("annotations");
  if (ann == meta->end() || !ann->is_object()) return false;
  auto mine = ann->find(annotation);
  if (mine == ann->end() || !mine->is_string() || *mine != digest) return false;
  auto fields = meta->find("managedFields");
  if (fields == meta->end() || !fields->is_array() || fields->empty()) return false;
  bool applied = false;
  for (const nlohmann::json& f : *fields) {
    if (!f.is_object()) return false;
    auto str = [&f](const char* k) {
      auto it = f.find(k);
      return it != f.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    if (str("subresource") == "status") continue;
    if (str("manager") != manager || str("operation") != "Apply") return false;
    applied = true;
  }
  return applied;
}

bool ManagedBy(const nlohmann::json& live, const std::string& manager) {
  if (!live.is_object()) return false;
  auto meta = live.find("metadata");
  if (meta == live.end() || !meta->is_object()) return false;
  auto fields = meta->find("managedFields");
  if (fields == meta->end() || !fields->is_array()) return false;
  for (const nlohmann::json& f : *fields) {
    if (f.is_object() && f.contains("manager") && f["manager"].is_string() && f["manager"] == manager) return true;
  }
  return false;
}

}  // namespace ferry::deployer::kubernetes
