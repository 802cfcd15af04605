#include "services/deployer/kubernetes/kube_health.h"

#include <cstdint>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace ferry::deployer::kubernetes {
namespace {

using nlohmann::json;
using Health = std::pair<v1::HealthStatus, std::string>;

const json& Empty() {
  static const json* empty = new json(json::object());
  return *empty;
}

const json& Field(const json& j, const char* key) {
  if (!j.is_object()) return Empty();
  auto it = j.find(key);
  return it == j.end() ? Empty() : *it;
}

std::string Str(const json& j, const char* key) {
  const json& v = Field(j, key);
  return v.is_string() ? v.get<std::string>() : "";
}

int64_t Int(const json& j, const char* key, int64_t fallback = 0) {
  const json& v = Field(j, key);
  return v.is_number_integer() ? v.get<int64_t>() : fallback;
}

bool Has(const json& j, const char* key) { return j.is_object() && j.contains(key); }

// The condition of `type`, or an empty object.
const json& Condition(const json& status, const std::string& type) {
  const json& conds = Field(status, "conditions");
  if (!conds.is_array()) return Empty();
  for (const json& c : conds) {
    if (Str(c, "type") == type) return c;
  }
  return Empty();
}

std::string Because(const json& cond) {
  std::string reason = Str(cond, "reason"), message = Str(cond, "message");
  if (reason.empty()) return message;
  return message.empty() ? reason : absl::StrCat(reason, ": ", message);
}

// The controller has not seen the latest spec yet.
bool Unobserved(const json& obj, const json& status) {
  const json& meta = Field(obj, "metadata");
  return Has(meta, "generation") && Int(status, "observedGeneration", -1) < Int(meta, "generation");
}

Health Progressing(std::string why) { return {v1::HEALTH_STATUS_PROGRESSING, std::move(why)}; }
Health Healthy(std::string why) { return {v1::HEALTH_STATUS_HEALTHY, std::move(why)}; }
Health Degraded(std::string why) { return {v1::HEALTH_STATUS_DEGRADED, std::move(why)}; }

Health DeploymentHealth(const json& obj) {
  const json& spec = Field(obj, "spec");
  const json& status = Field(obj, "status");
  if (Field(spec, "paused").is_boolean() && spec["paused"].get<bool>()) return Healthy("paused");
  if (Unobserved(obj, status)) return Progressing("waiting for the controller to observe the latest generation");
  const json& progressing = Condition(status, "Progressing");
  if (Str(progressing, "reason") == "ProgressDeadlineExceeded") {
    return Degraded(absl::StrCat("progress deadline exceeded: ", Str(progressing, "message")));
  }
  int64_t want = Int(spec, "replicas", 1);
  int64_t updated = Int(status, "updatedReplicas"), total = Int(status, "replicas");
  int64_t available = Int(status, "availableReplicas");
  if (updated < want) return Progressing(absl::StrCat(updated, " of ", want, " replicas updated"));
  if (total > updated) return Progressing(absl::StrCat(total - updated, " old replicas pending termination"));
  if (available < updated) return Progressing(absl::StrCat(available, " of ", updated, " updated replicas available"));
  return Healthy(absl::StrCat(available, " of ", want, " replicas available"));
}

Health StatefulSetHealth(const json& obj) {
  const json& spec = Field(obj, "spec");
  const json& status = Field(obj, "status");
  if (Unobserved(obj, status)) return Progressing("waiting for the controller to observe the latest generation");
  int64_t want = Int(spec, "replicas", 1);
  int64_t ready = Int(status, "readyReplicas");
  if (ready < want) return Progressing(absl::StrCat(ready, " of ", want, " replicas ready"));
  if (Str(Field(spec, "updateStrategy"), "type") == "OnDelete") return Healthy("OnDelete: all replicas ready");
  int64_t partition = Int(Field(Field(spec, "updateStrategy"), "rollingUpdate"), "partition");
  if (partition > 0) {
    int64_t updated = Int(status, "updatedReplicas");
    if (updated < want - partition) {
      return Progressing(absl::StrCat(updated, " of ", want - partition, " replicas above the partition updated"));
    }
    return Healthy(absl::StrCat("partitioned roll out complete: ", updated, " new replicas"));
  }
  if (Str(status, "updateRevision") != Str(status, "currentRevision")) {
    return Progressing(absl::StrCat(Int(status, "updatedReplicas"), " of ", want, " replicas updated"));
  }
  return Healthy(absl::StrCat(ready, " of ", want, " replicas ready"));
}

Health DaemonSetHealth(const json& obj) {
  const json& spec = Field(obj, "spec");
  const json& status = Field(obj, "status");
  if (Unobserved(obj, status)) return Progressing("waiting for the controller to observe the latest generation");
  int64_t want = Int(status, "desiredNumberScheduled");
  if (Str(Field(spec, "updateStrategy"), "type") == "OnDelete") return Healthy("OnDelete");
  int64_t updated = Int(status, "updatedNumberScheduled"), available = Int(status, "numberAvailable");
  if (updated < want) return Progressing(absl::StrCat(updated, " of ", want, " pods updated"));
  if (available < want) return Progressing(absl::StrCat(available, " of ", want, " updated pods available"));
  return Healthy(absl::StrCat(available, " of ", want, " pods available"));
}

Health ReplicaSetHealth(const json& obj) {
  const json& status = Field(obj, "status");
  if (Unobserved(obj, status)) return Progressing("waiting for the controller to observe the latest generation");
  const json& failure = Condition(status, "ReplicaFailure");
  if (Str(failure, "status") == "True") return Degraded(Because(failure));
  int64_t want = Int(Field(obj, "spec"), "replicas", 1);
  int64_t available = Int(status, "availableReplicas");
  if (available < want) return Progressing(absl::StrCat(available, " of ", want, " replicas available"));
  return Healthy(absl::StrCat(available, " of ", want, " replicas available"));
}

Health PodHealth(const json& obj) {
  const json& status = Field(obj, "status");
  std::string phase = Str(status, "phase");
  if (phase == "Succeeded") return Healthy("succeeded");
  if (phase == "Failed") {
    std::string why = Str(status, "message");
    return Degraded(why.empty() ? "failed" : "failed: " + why);
  }
  static const char* const kBad[] = {"CrashLoopBackOff",          "ErrImagePull",    "ImagePullBackOff",
                                     "CreateContainerConfigError", "InvalidImageName", "CreateContainerError"};
  bool all_ready = true;
  int containers = 0;
  const json& statuses = Field(status, "containerStatuses");
  if (statuses.is_array()) {
    for (const json& c : statuses) {
      ++containers;
      const json& waiting = Field(Field(c, "state"), "waiting");
      std::string reason = Str(waiting, "reason");
      for (const char* bad : kBad) {
        if (reason == bad) {
          return Degraded(absl::StrCat("container ", Str(c, "name"), ": ", reason,
                                       Str(waiting, "message").empty() ? "" : ": " + Str(waiting, "message")));
        }
      }
      if (!(Field(c, "ready").is_boolean() && c["ready"].get<bool>())) all_ready = false;
    }
  }
  if (phase == "Running" && containers > 0 && all_ready) return Healthy("running, all containers ready");
  if (phase == "Running" && Str(Field(obj, "spec"), "restartPolicy") != "Always" && containers > 0) {
    return Progressing("running");
  }
  return Progressing(phase.empty() ? "no status yet" : absl::StrCat(phase, all_ready ? "" : ", containers not ready"));
}

Health JobHealth(const json& obj) {
  const json& status = Field(obj, "status");
  const json& failed = Condition(status, "Failed");
  if (Str(failed, "status") == "True") return Degraded(absl::StrCat("job failed: ", Because(failed)));
  const json& complete = Condition(status, "Complete");
  if (Str(complete, "status") == "True") return Healthy("job complete");
  const json& suspended = Condition(status, "Suspended");
  if (Str(suspended, "status") == "True") return Healthy("suspended");
  return Progressing(absl::StrCat("running: ", Int(status, "active"), " active, ", Int(status, "succeeded"),
                                  " succeeded"));
}

Health ServiceHealth(const json& obj) {
  if (Str(Field(obj, "spec"), "type") != "LoadBalancer") return Healthy("service exists");
  const json& ingress = Field(Field(Field(obj, "status"), "loadBalancer"), "ingress");
  if (ingress.is_array() && !ingress.empty()) {
    const json& first = ingress[0];
    std::string at = Str(first, "ip").empty() ? Str(first, "hostname") : Str(first, "ip");
    return Healthy("load balancer at " + at);
  }
  return Progressing("waiting for a load balancer ingress");
}

Health PvcHealth(const json& obj) {
  std::string phase = Str(Field(obj, "status"), "phase");
  if (phase == "Bound") return Healthy("bound");
  if (phase == "Lost") return Degraded("claim lost its volume");
  return Progressing(phase.empty() ? "pending" : phase);
}

Health CrdHealth(const json& obj) {
  const json& status = Field(obj, "status");
  const json& names = Condition(status, "NamesAccepted");
  if (Str(names, "status") == "False") return Degraded(absl::StrCat("names not accepted: ", Because(names)));
  const json& established = Condition(status, "Established");
  if (Str(established, "status") == "True") return Healthy("established");
  return Progressing("waiting to be established");
}

Health ApiServiceHealth(const json& obj) {
  const json& available = Condition(Field(obj, "status"), "Available");
  if (Str(available, "status") == "True") return Healthy("available");
  return Progressing(Because(available).empty() ? "not available yet" : Because(available));
}

}  // namespace

std::pair<v1::HealthStatus, std::string> HealthOf(const json& object) {
  if (!object.is_object()) return {v1::HEALTH_STATUS_UNKNOWN, "not an object"};
  if (Has(Field(object, "metadata"), "deletionTimestamp")) return Progressing("being deleted");
  std::string api = Str(object, "apiVersion"), kind = Str(object, "kind");
  std::string group = api.find('/') == std::string::npos ? "" : api.substr(0, api.find('/'));
  if (group == "apps" && kind == "Deployment") return DeploymentHealth(object);
  if (group == "apps" && kind == "StatefulSet") return StatefulSetHealth(object);
  if (group == "apps" && kind == "DaemonSet") return DaemonSetHealth(object);
  if (group == "apps" && kind == "ReplicaSet") return ReplicaSetHealth(object);
  if (group.empty() && kind == "Pod") return PodHealth(object);
  if (group == "batch" && kind == "Job") return JobHealth(object);
  if (group.empty() && kind == "Service") return ServiceHealth(object);
  if (group.empty() && kind == "PersistentVolumeClaim") return PvcHealth(object);
  if (group == "apiextensions.k8s.io" && kind == "CustomResourceDefinition") return CrdHealth(object);
  if (group == "apiregistration.k8s.io" && kind == "APIService") return ApiServiceHealth(object);
  const json& status = Field(object, "status");
  for (const char* type : {"Ready", "Available"}) {
    const json& cond = Condition(status, type);
    std::string s = Str(cond, "status");
    if (s.empty()) continue;
    if (s == "True") return Healthy(absl::StrCat(type, Because(cond).empty() ? "" : ": " + Because(cond)));
    if (s == "False" && !absl::StrContains(Str(cond, "reason"), "Progress")) {
      return Degraded(absl::StrCat(type, " is False", Because(cond).empty() ? "" : ": " + Because(cond)));
    }
    return Progressing(absl::StrCat(type, " is ", s, Because(cond).empty() ? "" : ": " + Because(cond)));
  }
  return Healthy("exists");
}

bool FailedForGood(const json& object) {
  if (HealthOf(object).first != v1::HEALTH_STATUS_DEGRADED) return false;
  std::string api = Str(object, "apiVersion"), kind = Str(object, "kind");
  std::string group = api.find('/') == std::string::npos ? "" : api.substr(0, api.find('/'));
  if (group == "apps" && kind == "Deployment") return true;  // DEGRADED only past the progress deadline
  if (group == "batch" && kind == "Job") return true;
  if (group.empty() && kind == "Pod") return Str(Field(object, "status"), "phase") == "Failed";
  if (group.empty() && kind == "PersistentVolumeClaim") return true;
  if (group == "apiextensions.k8s.io" && kind == "CustomResourceDefinition") return true;
  return false;
}

}  // namespace ferry::deployer::kubernetes
