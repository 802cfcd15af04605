#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "ferry/v1/common.pb.h"
#include "services/planner/parse_limits.h"

namespace ferry::planner {

// The annotation holding an object's sync wave (an integer, default 0).
inline constexpr char kSyncWaveAnnotation[] = "ferry.dev/sync-wave";

// What one application's render has used of ParseLimits' per-application
// budgets (objects, manifest bytes), shared by the ParseManifests calls of
// that render (one per file, or one for a tool's output).
struct ManifestBudget {
  explicit ManifestBudget(const ParseLimits& l = ParseLimits()) : limits(l) {}
  ParseLimits limits;
  int objects = 0;
  int64_t bytes = 0;  // sum of the manifests' compact JSON
};

// Parses multi-document YAML (or JSON) text into Kubernetes-shaped objects.
// `source_path` is the repository path reported in errors and stored in
// each Manifest. Empty documents and `List` kinds are handled. Returns a
// render failure (see render_failure.h) naming the file and line for
// malformed YAML, and naming the field for objects missing apiVersion, kind
// or metadata.name. Objects whose source is known from a "# Source: <path>"
// comment (helm) get that path as their source_path. Reading stays within
// `budget.limits` (bounded_yaml_reader.h) and adds to `budget`: past a limit,
// a render failure "<file>:<line>: <what> (limit --<flag>)", code
// RESOURCE_EXHAUSTED.
absl::StatusOr<std::vector<v1::Manifest>> ParseManifests(const std::string& text, const std::string& source_path,
                                                         ManifestBudget& budget);

// As above with the default limits and a budget of its own.
absl::StatusOr<std::vector<v1::Manifest>> ParseManifests(const std::string& text, const std::string& source_path);

// The identity (group, kind, namespace, name; version informative) of an
// object, or a render failure naming the missing field.
absl::StatusOr<v1::ObjectRef> ObjectIdentity(const nlohmann::json& object, const std::string& source_path);

// "group/kind/namespace/name" (empty parts kept): the identity as a map key.
std::string IdentityKey(const v1::ObjectRef& ref);

// Human-readable identity, e.g. "Process default/web" or "apps/Deployment web".
std::string DescribeObject(const v1::ObjectRef& ref);

// Rejects a second object with the same identity (render failure naming both
// source files) and sorts manifests by identity.
absl::Status CheckAndSortManifests(std::vector<v1::Manifest>& manifests);

// "sha256:<hex>" over the canonical JSON of the manifests in identity order.
std::string ManifestsDigest(const std::vector<v1::Manifest>& manifests);

}  // namespace ferry::planner
