#include "services/deployer/kubernetes/kubernetes_target.h"

#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/crypto/sha256.h"
#include "common/json/json.h"
#include "common/kube/secret_mask.h"
#include "common/logging/logger.h"
#include "services/deployer/kubernetes/kube_credentials.h"
#include "services/deployer/kubernetes/kube_health.h"
#include "services/deployer/kubernetes/kube_objects.h"

namespace ferry::deployer::kubernetes {
namespace {

using nlohmann::json;

std::string Str(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

const json& Meta(const json& doc) {
  static const json* empty = new json(json::object());
  if (!doc.is_object()) return *empty;
  auto it = doc.find("metadata");
  return it != doc.end() && it->is_object() ? *it : *empty;
}

std::string GroupOf(const std::string& api_version) {
  size_t slash = api_version.find('/');
  return slash == std::string::npos ? "" : api_version.substr(0, slash);
}

std::string Describe(const TargetObject& o) {
  return absl::StrCat(o.source_path.empty() ? "" : o.source_path + ": ", o.key.kind, " ",
                      o.key.namespace_.empty() ? "" : o.key.namespace_ + "/", o.key.name);
}

absl::StatusOr<json> ParseObject(const TargetObject& o) {
  absl::StatusOr<json> doc = ParseJson(o.json);
  if (!doc.ok()) return absl::InvalidArgumentError(absl::StrCat(Describe(o), ": not JSON: ", doc.status().message()));
  if (!doc->is_object()) return absl::InvalidArgumentError(absl::StrCat(Describe(o), ": not an object"));
  if (Str(*doc, "apiVersion").empty()) return absl::InvalidArgumentError(absl::StrCat(Describe(o), ": apiVersion: is required"));
  if (Str(*doc, "kind").empty()) return absl::InvalidArgumentError(absl::StrCat(Describe(o), ": kind: is required"));
  if (Str(Meta(*doc), "name").empty()) {
    return absl::InvalidArgumentError(absl::StrCat(Describe(o), ": metadata.name: is required"));
  }
  return doc;
}

// The CRDs among `objects`: "<group>/<version>" + "/" + kind -> namespaced.
std::map<std::string, bool> CrdKinds(const std::vector<json>& docs) {
  std::map<std::string, bool> out;
  for (const json& d : docs) {
    if (Str(d, "kind") != "CustomResourceDefinition" || GroupOf(Str(d, "apiVersion")) != "apiextensions.k8s.io") continue;
    const json& spec = d.contains("spec") ? d["spec"] : json::object();
    std::string group = Str(spec, "group");
    std::string kind = spec.contains("names") ? Str(spec["names"], "kind") : "";
    bool namespaced = Str(spec, "scope") != "Cluster";
    if (spec.contains("versions") && spec["versions"].is_array()) {
      for (const json& v : spec["versions"]) out[absl::StrCat(group, "/", Str(v, "name"), "/", kind)] = namespaced;
    }
  }
  return out;
}

bool Stopped(const std::atomic<bool>* cancel) { return cancel != nullptr && cancel->load(); }

}  // namespace

KubernetesTarget::KubernetesTarget(std::unique_ptr<KubeClient> client, std::string default_namespace,
                                   size_t max_watches)
    : client_(std::move(client)),
      discovery_(client_.get()),
      default_namespace_(std::move(default_namespace)),
      watch_(std::make_unique<WatchCache>(client_.get(), kApplicationLabel, max_watches)) {}

absl::StatusOr<json> KubernetesTarget::Live(const Located& at) {
  watch_->Ensure(at.resource, at.ns);
  if (std::optional<json> cached = watch_->Get(at.resource, at.ns, at.name, absl::Seconds(5))) return *std::move(cached);
  absl::StatusOr<KubeResponse> r = client_->Request("GET", at.resource.Path(at.ns, at.name));
  if (!r.ok()) return absl::UnavailableError(r.status().message());
  if (r->code == 404) return absl::NotFoundError("does not exist");
  if (r->code != 200) return absl::UnavailableError(KubeErrorMessage(*r));
  absl::StatusOr<json> live = ParseJson(r->body);
  if (!live.ok()) return absl::UnavailableError("live object is not JSON");
  return live;
}

absl::StatusOr<KubernetesTarget::Located> KubernetesTarget::Locate(const json& doc, const ObjectKey& key) {
  absl::StatusOr<ApiResource> res = discovery_.Resolve(Str(doc, "apiVersion"), Str(doc, "kind"));
  if (!res.ok()) return res.status();
  Located at{*res, "", Str(Meta(doc), "name")};
  if (res->namespaced) {
    at.ns = Str(Meta(doc), "namespace");
    if (at.ns.empty()) at.ns = key.namespace_;
    if (at.ns.empty()) at.ns = default_namespace_;
  }
  return at;
}

absl::StatusOr<KubernetesTarget::Located> KubernetesTarget::LocateKey(const ObjectKey& key) {
  absl::StatusOr<ApiResource> res = discovery_.ResolveGroupKind(key.group, key.kind);
  if (!res.ok()) return res.status();
  Located at{*res, "", key.name};
  if (res->namespaced) at.ns = key.namespace_.empty() ? default_namespace_ : key.namespace_;
  return at;
}

json KubernetesTarget::Outgoing(const AppScope& app, json doc, const Located& at, const std::string& rendered) const {
  json& meta = doc["metadata"];
  json& annotations = meta["annotations"];
  if (!annotations.is_object()) annotations = json::object();
  annotations[kAppliedDigestAnnotation] = Sha256Hex(rendered);
  if (at.resource.namespaced) {
    meta["namespace"] = at.ns;
  } else {
    meta.erase("namespace");
  }
  json& labels = meta["labels"];
  if (!labels.is_object()) labels = json::object();
  labels[kApplicationLabel] = app.application_id;
  labels[kEnvironmentLabel] = app.environment_id;
  return doc;
}

absl::StatusOr<KubeResponse> KubernetesTarget::ServerSideApply(const Located& at, const json& body, bool force,
                                                               bool dry_run) {
  absl::StatusOr<std::string> text = DumpJson(body);
  if (!text.ok()) return text.status();
  std::string path = absl::StrCat(at.resource.Path(at.ns, at.name), "?fieldManager=", kFieldManager,
                                  force ? "&force=true" : "", dry_run ? "&dryRun=All" : "");
  return client_->Request("PATCH", path, *text, "application/apply-patch+yaml");
}

absl::StatusOr<std::vector<TargetObject>> KubernetesTarget::Prepare(const AppScope& app, std::vector<TargetObject> objects,
                                                                   const FileFetcher& fetch) {
  (void)app;
  (void)fetch;
  std::vector<json> docs;
  docs.reserve(objects.size());
  for (const TargetObject& o : objects) {
    absl::StatusOr<json> doc = ParseObject(o);
    if (!doc.ok()) return doc.status();
    docs.push_back(*std::move(doc));
  }
  std::map<std::string, bool> crds = CrdKinds(docs);
  std::vector<int> rank(objects.size());
  for (size_t i = 0; i < objects.size(); ++i) {
    const json& d = docs[i];
    std::string api = Str(d, "apiVersion"), kind = Str(d, "kind");
    bool namespaced;
    absl::StatusOr<ApiResource> res = discovery_.Resolve(api, kind);
    if (res.ok()) {
      namespaced = res->namespaced;
    } else if (absl::IsNotFound(res.status())) {
      auto crd = crds.find(absl::StrCat(api.find('/') == std::string::npos ? "" : api, "/", kind));
      if (api.find('/') == std::string::npos || crd == crds.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat(Describe(objects[i]), ": apiVersion ", api, " kind ", kind,
                         ": the cluster serves no such kind and no CustomResourceDefinition of this application "
                         "defines it"));
      }
      namespaced = crd->second;
    } else {
      return res.status();  // UNAVAILABLE: the cluster could not be asked; retried.
    }
    if (!namespaced && !Str(Meta(d), "namespace").empty()) {
      return absl::InvalidArgumentError(absl::StrCat(Describe(objects[i]), ": metadata.namespace: ", kind,
                                                     " is cluster-scoped and takes no namespace"));
    }
    rank[i] = InstallRank(GroupOf(api), kind);
  }
  // Within a wave: the install order, then as given.
  std::vector<size_t> order(objects.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (objects[a].wave != objects[b].wave) return objects[a].wave < objects[b].wave;
    return rank[a] < rank[b];
  });
  std::vector<TargetObject> out;
  out.reserve(objects.size());
  for (size_t i : order) out.push_back(std::move(objects[i]));
  return out;
}

absl::Status KubernetesTarget::WaitEstablished(const Located& at, absl::Time deadline, const std::atomic<bool>* cancel) {
  while (true) {
    absl::StatusOr<KubeResponse> r = client_->Request("GET", at.resource.Path(at.ns, at.name));
    if (r.ok() && r->code == 200) {
      absl::StatusOr<json> live = ParseJson(r->body);
      if (live.ok()) {
        auto [health, why] = HealthOf(*live);
        if (health == v1::HEALTH_STATUS_HEALTHY) return absl::OkStatus();
        if (health == v1::HEALTH_STATUS_DEGRADED) {
          return absl::FailedPreconditionError(absl::StrCat("CustomResourceDefinition ", at.name, ": ", why));
        }
      }
    }
    if (Stopped(cancel)) return absl::AbortedError("cancelled");
    if (absl::Now() + absl::Milliseconds(100) > deadline) {
      return absl::DeadlineExceededError(absl::StrCat("CustomResourceDefinition ", at.name, " not established in time"));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
}

absl::Status KubernetesTarget::Apply(const AppScope& app, const TargetObject& desired, const TargetObject* previous,
                                     absl::Time deadline, const std::atomic<bool>* cancel) {
  (void)previous;
  absl::StatusOr<json> doc = ParseObject(desired);
  if (!doc.ok()) return doc.status();
  // A kind a CRD of this application defines is served shortly after the CRD
  // is established: ask again until the deadline.
  absl::StatusOr<Located> at = Locate(*doc, desired.key);
  while (!at.ok() && absl::IsNotFound(at.status()) && !Stopped(cancel) && absl::Now() + absl::Milliseconds(200) < deadline) {
    absl::SleepFor(absl::Milliseconds(200));
    at = Locate(*doc, desired.key);
  }
  if (!at.ok()) return absl::Status(at.status().code(), absl::StrCat(Describe(desired), ": ", at.status().message()));
  json body = Outgoing(app, *std::move(doc), *at, desired.json);
  watch_->Ensure(at->resource, at->ns);
  absl::StatusOr<KubeResponse> r = ServerSideApply(*at, body, app.force_conflicts, false);
  if (!r.ok()) return r.status();
  if (r->code == 409) {
    return absl::FailedPreconditionError(
        absl::StrCat(Describe(desired), ": ", ConflictMessage(r->body),
                     "; another field manager owns these fields (set sync.forceConflicts to take them over)"));
  }
  if (r->code != 200 && r->code != 201) {
    absl::Status s = KubeStatus(*r, Describe(desired));
    if (absl::IsInvalidArgument(s)) return absl::FailedPreconditionError(s.message());
    return s;
  }
  // The cache has the applied object at once (the watch's event may come later).
  if (absl::StatusOr<json> result = ParseJson(r->body); result.ok()) watch_->Put(at->resource, at->ns, *result);
  if (at->resource.group == "apiextensions.k8s.io" && at->resource.kind == "CustomResourceDefinition") {
    return WaitEstablished(*at, deadline, cancel);
  }
  return absl::OkStatus();
}

absl::Status KubernetesTarget::Delete(const AppScope& app, const TargetObject& applied, absl::Time deadline) {
  (void)app;
  (void)deadline;
  absl::StatusOr<json> doc = ParseObject(applied);
  if (!doc.ok()) return doc.status();
  absl::StatusOr<Located> at = Locate(*doc, applied.key);
  if (absl::IsNotFound(at.status())) return absl::OkStatus();  // Its kind is gone, and it with it.
  if (!at.ok()) return at.status();
  std::string path = at->resource.Path(at->ns, at->name);
  absl::StatusOr<KubeResponse> r = client_->Request("GET", path);
  if (!r.ok()) return r.status();
  if (r->code == 404) return absl::OkStatus();
  if (r->code != 200) return KubeStatus(*r, Describe(applied));
  absl::StatusOr<json> live = ParseJson(r->body);
  if (!live.ok()) return absl::UnavailableError(absl::StrCat(Describe(applied), ": live object is not JSON"));
  if (!ManagedBy(*live, kFieldManager)) {
    // Replaced by someone else since Ferry applied it: not Ferry's to delete.
    logging::Warn("not pruning an object Ferry no longer manages",
                  {{"object", applied.key.ToString()}, {"application", app.application_id}});
    return absl::OkStatus();
  }
  std::string propagation = "Background";
  const json& ann = Meta(*doc).contains("annotations") ? Meta(*doc)["annotations"] : json::object();
  std::string asked = Str(ann, kDeletePropagationAnnotation);
  if (!asked.empty()) {
    if (asked != "Background" && asked != "Foreground" && asked != "Orphan") {
      return absl::InvalidArgumentError(absl::StrCat(Describe(applied), ": annotation ", kDeletePropagationAnnotation,
                                                     ": \"", asked, "\" is not Background, Foreground or Orphan"));
    }
    propagation = asked;
  }
  json options = {{"apiVersion", "v1"},
                  {"kind", "DeleteOptions"},
                  {"propagationPolicy", propagation},
                  {"preconditions", {{"uid", Str(Meta(*live), "uid")}}}};
  absl::StatusOr<KubeResponse> del = client_->Request("DELETE", path, DumpJsonLossy(options));
  if (!del.ok()) return del.status();
  watch_->Forget(at->resource, at->ns, at->name);
  if (del->code == 200 || del->code == 202 || del->code == 404) return absl::OkStatus();
  if (del->code == 409) return absl::OkStatus();  // uid precondition: replaced meanwhile, not Ferry's object.
  return KubeStatus(*del, Describe(applied));
}

ObservedObject KubernetesTarget::Observe(const AppScope& app, const ObjectKey& key, const TargetObject* applied) {
  ObservedObject out;
  std::optional<json> doc;
  absl::StatusOr<Located> at = absl::UnknownError("");
  if (applied != nullptr) {
    absl::StatusOr<json> parsed = ParseObject(*applied);
    if (!parsed.ok()) {
      out.health_message = std::string(parsed.status().message());
      return out;
    }
    doc = *std::move(parsed);
    at = Locate(*doc, key);
  } else {
    at = LocateKey(key);
  }
  if (!at.ok()) {
    if (absl::IsNotFound(at.status())) {
      out.health = v1::HEALTH_STATUS_MISSING;
      out.health_message = std::string(at.status().message());
      if (applied != nullptr) {
        out.drift = v1::DRIFT_STATUS_MISSING;
        out.drift_message = out.health_message;
      }
    } else {
      out.health_message = std::string(at.status().message());
    }
    return out;
  }
  absl::StatusOr<json> live = Live(*at);
  if (absl::IsNotFound(live.status())) {
    out.health = v1::HEALTH_STATUS_MISSING;
    out.health_message = "does not exist";
    if (applied != nullptr) {
      out.drift = v1::DRIFT_STATUS_MISSING;
      out.drift_message = "deleted outside Ferry";
    }
    return out;
  }
  if (!live.ok()) {
    out.health_message = std::string(live.status().message());
    return out;
  }
  out.exists = true;
  std::tie(out.health, out.health_message) = HealthOf(*live);
  json shown = *live;
  if (shown.contains("metadata") && shown["metadata"].is_object()) shown["metadata"].erase("managedFields");
  kube::MaskSecretValues(shown);
  out.live_json = DumpJsonLossy(shown);
  if (applied == nullptr) return out;
  // Drift: what a re-apply of the applied object would make of the live one
  // (server-side dry run, taking every field Ferry set), against the live
  // object. Defaults and normalisation are the server's, so only a field
  // changed by someone else differs.
  // Fast path: nobody but Ferry's apply of this very object wrote a field
  // (status writes aside), so nothing Ferry manages can have changed.
  if (OnlyAppliedBy(*live, kFieldManager, kAppliedDigestAnnotation, Sha256Hex(applied->json))) {
    out.drift = v1::DRIFT_STATUS_IN_SYNC;
    return out;
  }
  absl::StatusOr<KubeResponse> dry = ServerSideApply(*at, Outgoing(app, *doc, *at, applied->json), true, true);
  if (!dry.ok() || dry->code != 200) {
    out.drift = v1::DRIFT_STATUS_UNKNOWN;
    out.drift_message = absl::StrCat("dry-run apply failed: ", dry.ok() ? KubeErrorMessage(*dry)
                                                                          : std::string(dry.status().message()));
    return out;
  }
  absl::StatusOr<json> expected = ParseJson(dry->body);
  if (!expected.ok()) {
    out.drift = v1::DRIFT_STATUS_UNKNOWN;
    out.drift_message = "dry-run result is not JSON";
    return out;
  }
  json want = WithoutServerFields(*std::move(expected));
  json have = WithoutServerFields(*live);
  kube::MaskSecretValues(want);
  kube::MaskSecretValues(have);
  std::vector<std::string> fields = DifferentFields(have, want);
  if (fields.empty()) {
    out.drift = v1::DRIFT_STATUS_IN_SYNC;
  } else {
    out.drift = v1::DRIFT_STATUS_MODIFIED;
    if (fields.size() > 20) {
      size_t more = fields.size() - 20;
      fields.resize(20);
      fields.push_back(absl::StrCat("and ", more, " more"));
    }
    out.drift_message = absl::StrCat("changed outside Ferry: ", absl::StrJoin(fields, ", "));
  }
  return out;
}

std::pair<v1::HealthStatus, std::string> KubernetesTarget::Health(const AppScope& app, const TargetObject& applied) {
  (void)app;
  absl::StatusOr<json> doc = ParseObject(applied);
  if (!doc.ok()) return {v1::HEALTH_STATUS_UNKNOWN, std::string(doc.status().message())};
  absl::StatusOr<Located> at = Locate(*doc, applied.key);
  if (absl::IsNotFound(at.status())) return {v1::HEALTH_STATUS_MISSING, std::string(at.status().message())};
  if (!at.ok()) return {v1::HEALTH_STATUS_UNKNOWN, std::string(at.status().message())};
  absl::StatusOr<json> live = Live(*at);
  if (absl::IsNotFound(live.status())) return {v1::HEALTH_STATUS_MISSING, "does not exist"};
  if (!live.ok()) return {v1::HEALTH_STATUS_UNKNOWN, std::string(live.status().message())};
  return HealthOf(*live);
}

bool KubernetesTarget::FailedForGood(const AppScope& app, const TargetObject& applied) {
  (void)app;
  absl::StatusOr<json> doc = ParseObject(applied);
  if (!doc.ok()) return false;
  absl::StatusOr<Located> at = Locate(*doc, applied.key);
  if (!at.ok()) return false;
  absl::StatusOr<json> live = Live(*at);
  return live.ok() && kubernetes::FailedForGood(*live);
}

bool KubernetesTarget::TakeChanged(const AppScope& app) {
  return watch_->TakeChanged(app.application_id, app.environment_id);
}

absl::StatusOr<DryRunResult> KubernetesTarget::DryRun(const AppScope& app, const TargetObject& desired) {
  absl::StatusOr<json> doc = ParseObject(desired);
  if (!doc.ok()) return doc.status();
  absl::StatusOr<Located> at = Locate(*doc, desired.key);
  if (!at.ok()) return at.status();
  json body = Outgoing(app, *std::move(doc), *at, desired.json);
  DryRunResult out;
  absl::StatusOr<KubeResponse> r = ServerSideApply(*at, body, app.force_conflicts, true);
  if (!r.ok()) return r.status();
  if (r->code == 409) {
    out.conflict = ConflictMessage(r->body);
    r = ServerSideApply(*at, body, true, true);
    if (!r.ok()) return r.status();
  }
  if (r->code != 200 && r->code != 201) return KubeStatus(*r, Describe(desired));
  absl::StatusOr<json> result = ParseJson(r->body);
  if (!result.ok()) return absl::UnavailableError(absl::StrCat(Describe(desired), ": dry-run result is not JSON"));
  json shown = WithoutServerFields(*std::move(result));
  kube::MaskSecretValues(shown);
  out.json = DumpJsonLossy(shown);
  return out;
}

absl::StatusOr<Target*> KubernetesTargetFactory::For(const v1::DeployTarget& target) {
  if (target.kind() != v1::TARGET_KIND_KUBERNETES || !target.has_kubernetes()) {
    return absl::InvalidArgumentError("target: not TARGET_KIND_KUBERNETES with a kubernetes configuration");
  }
  const v1::KubernetesTargetConfig& k = target.kubernetes();
  std::string key = k.in_cluster() ? absl::StrCat("in-cluster\n", k.namespace_())
                                   : absl::StrCat(k.kubeconfig(), "\n", k.context(), "\n", k.namespace_());
  ferry::MutexLock l(&mu_);
  auto& t = targets_[key];
  if (t) return t.get();
  absl::StatusOr<KubeCredentials> creds = k.in_cluster()
                                              ? InClusterCredentials(account_dir_, service_host_, service_port_)
                                              : LoadKubeconfig(k.kubeconfig(), k.context());
  if (!creds.ok()) {
    targets_.erase(key);
    return absl::InvalidArgumentError(absl::StrCat("target.kubernetes: ", creds.status().message()));
  }
  std::string ns = !k.namespace_().empty()            ? k.namespace_()
                   : !creds->default_namespace.empty() ? creds->default_namespace
                                                       : "default";
  absl::StatusOr<std::unique_ptr<KubeClient>> client = KubeClient::Create(*std::move(creds));
  if (!client.ok()) {
    targets_.erase(key);
    return absl::InvalidArgumentError(absl::StrCat("target.kubernetes: ", client.status().message()));
  }
  t = std::make_unique<KubernetesTarget>(*std::move(client), ns, max_watches_);
  return t.get();
}

}  // namespace ferry::deployer::kubernetes
