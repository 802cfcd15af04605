#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "ferry/v1/common.pb.h"
#include "services/planner/parse_limits.h"
#include "services/planner/repo_source.h"

namespace ferry::planner {

// One job: the rules that let several Kustomize applications of one commit
// render in ONE `kubectl kustomize` run with exactly the objects each
// renders alone (Renderer::RenderBatch runs it). Most of a kubectl run's
// CPU is its start-up (some 20 ms); an application's own build is 1 to 3
// ms, so a pull request touching a base of 100 applications costs 8 runs
// instead of 100.
//
// How: each member is wrapped in a kustomization of its own whose only
// transformer annotates every object (metadata.annotations only) with the
// member's number, and a root kustomization lists the wrappers. Kustomize
// builds each member as a child (its own namespace, labels, patches,
// images... applied within it), then does three things over the union at
// the root that it would otherwise do over the member alone: name hashes
// of generated objects, back-references to renamed objects (nameReference),
// and vars. Those could let one member change another, so a member is
// batched only when:
//  - every kustomization among its inputs uses only the fields below
//    (BatchObstacle): no generators (no hashes), no namePrefix/nameSuffix,
//    no replacements and no JSON 6902 patches or allowNameChange (nothing
//    renamed, so a back-reference keeps its value whatever it resolves to),
//    no vars, no crds/configurations/openapi (transformer configuration
//    and the OpenAPI schema are shared by the whole run), no
//    buildMetadata/sortOptions (honoured at the root only);
//  - its output holds no object whose references kustomize resolves to a
//    name AND namespace (MapReferrer: RoleBinding and ClusterRoleBinding
//    subjects, webhook configurations' services, a Node's config map):
//    such a reference could take another member's namespace;
//  - the run succeeds (two members rendering one object, any tool error or
//    limit: every member renders alone, so failures read as they always do).
// Objects are split by the annotation, which is then removed (kustomize
// itself drops an empty annotations map, so one emptied by that is removed
// too), and given the member's kustomization file as their source, as a
// render alone would.

// The annotation that marks each object with its member's number.
inline constexpr char kBatchMemberAnnotation[] = "render.ferry.dev/batch-member";

// The kustomization fields a batched member may use.
bool BatchSafeKustomizationField(const std::string& field);

// Why an application whose inputs are `files` (with contents, as the
// renderer reads them) cannot be batched: "" when it can.
std::string BatchObstacle(const std::vector<TreeEntry>& files, const ParseLimits& limits);

// Whether kustomize resolves references in objects of this kind to a name
// and a namespace (map-valued nameReference fields).
bool MapReferrer(const v1::ObjectRef& object);

// The batch's kustomization files, (path under the batch folder, content):
// a root listing one wrapper per member, each wrapper naming its member's
// folder (`repo_from_wrapper` + app path) and the annotating transformer.
std::vector<std::pair<std::string, std::string>> BatchKustomizations(const std::vector<std::string>& app_paths,
                                                                     const std::string& repo_from_wrapper);

// Splits the objects of a batch run by member (the annotation removed).
// INTERNAL when an object lacks the annotation or names no member.
absl::StatusOr<std::vector<std::vector<v1::Manifest>>> SplitBatchOutput(std::vector<v1::Manifest> objects,
                                                                         size_t members);

}  // namespace ferry::planner
