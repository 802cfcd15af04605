#include "services/deployer/deployment_differ.h"

#include <map>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/json/json.h"
#include "common/kube/secret_mask.h"
#include "services/deployer/target.h"

namespace ferry::deployer {
namespace {

// The manifests a deployment applied, by identity, parsed and with Secret
// values masked.
absl::StatusOr<std::map<ObjectKey, std::pair<v1::ObjectRef, nlohmann::json>>> Objects(DeploymentRecords* records,
                                                                                      const std::string& id) {
  absl::StatusOr<v1::Plan> spec = records->GetSpec(id);
  if (!spec.ok()) return spec.status();
  std::map<ObjectKey, std::pair<v1::ObjectRef, nlohmann::json>> out;
  for (const v1::Manifest& m : spec->manifests()) {
    absl::StatusOr<nlohmann::json> doc = ParseJson(m.json());
    if (!doc.ok()) {
      return absl::DataLossError(absl::StrCat("deployment ", id, ": stored manifest ",
                                              ObjectKey::FromProto(m.object()).ToString(),
                                              " is not JSON: ", doc.status().message()));
    }
    kube::MaskSecretValues(*doc);
    out[ObjectKey::FromProto(m.object())] = {m.object(), std::move(*doc)};
  }
  return out;
}

}  // namespace

absl::StatusOr<v1::DiffDeploymentsResponse> DeploymentDiffer::Diff(const v1::DiffDeploymentsRequest& req) {
  if (req.to_deployment_id().empty()) return absl::InvalidArgumentError("to_deployment_id: required");
  v1::DiffDeploymentsResponse out;
  absl::StatusOr<v1::Deployment> to = records_->Get(req.to_deployment_id(), false);
  if (!to.ok()) return to.status();
  *out.mutable_to() = std::move(*to);
  absl::StatusOr<std::map<ObjectKey, std::pair<v1::ObjectRef, nlohmann::json>>> after =
      Objects(records_, req.to_deployment_id());
  if (!after.ok()) return after.status();
  std::map<ObjectKey, std::pair<v1::ObjectRef, nlohmann::json>> before;
  if (!req.from_deployment_id().empty()) {
    absl::StatusOr<v1::Deployment> from = records_->Get(req.from_deployment_id(), false);
    if (!from.ok()) return from.status();
    *out.mutable_from() = std::move(*from);
    absl::StatusOr<std::map<ObjectKey, std::pair<v1::ObjectRef, nlohmann::json>>> objects =
        Objects(records_, req.from_deployment_id());
    if (!objects.ok()) return objects.status();
    before = std::move(*objects);
  }
  // Both maps are sorted by identity: merge them.
  auto b = before.begin();
  auto a = after->begin();
  while (b != before.end() || a != after->end()) {
    v1::ObjectDiff d;
    if (a == after->end() || (b != before.end() && b->first < a->first)) {
      *d.mutable_object() = b->second.first;
      d.set_change(v1::OBJECT_CHANGE_REMOVED);
      ++b;
    } else if (b == before.end() || a->first < b->first) {
      *d.mutable_object() = a->second.first;
      d.set_change(v1::OBJECT_CHANGE_ADDED);
      ++a;
    } else {
      const nlohmann::json patch = nlohmann::json::diff(b->second.second, a->second.second);
      ++b;
      if (patch.empty()) {
        out.set_unchanged(out.unchanged() + 1);
        ++a;
        continue;
      }
      *d.mutable_object() = a->second.first;
      d.set_change(v1::OBJECT_CHANGE_CHANGED);
      d.set_json_patch(DumpJsonLossy(patch));
      ++a;
    }
    *out.add_objects() = std::move(d);
  }
  return out;
}

}  // namespace ferry::deployer
