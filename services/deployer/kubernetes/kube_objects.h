#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ferry::deployer::kubernetes {

// Pure functions over Kubernetes objects as JSON, used by the target.

// Where a kind goes in a wave: Namespaces first, then the other kinds that
// objects depend on (quotas, service accounts, Secrets and ConfigMaps,
// storage, CRDs, RBAC), then Services and workloads, then anything else
// (custom resources last, after their CRDs). Helm's install order.
int InstallRank(const std::string& group, const std::string& kind);

// The fields and managers of a server-side apply conflict, from the API
// server's 409 Status body: "conflict: .spec.replicas (conflict with
// \"kubectl-edit\" using apps/v1); ...". Falls back to the Status message.
std::string ConflictMessage(const std::string& status_body);

// The object without what the server keeps for itself and what changes on
// every write: metadata.managedFields, resourceVersion, generation, uid,
// creationTimestamp, selfLink, and status.
nlohmann::json WithoutServerFields(nlohmann::json object);

// JSON pointers of the fields where `live` differs from `expected` (both
// without server fields), e.g. "/spec/replicas"; for messages and audit.
std::vector<std::string> DifferentFields(const nlohmann::json& live, const nlohmann::json& expected);

// True when the live object carries `annotation` = `digest` and every entry
// of its managedFields is `manager`'s Apply or a write of the status
// subresource: only that apply set its fields, so none was changed since.
bool OnlyAppliedBy(const nlohmann::json& live, const std::string& manager, const std::string& annotation,
                   const std::string& digest);

// True when the live object's managedFields name `manager` (any operation).
bool ManagedBy(const nlohmann::json& live, const std::string& manager);

}  // namespace ferry::deployer::kubernetes
