#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ferry/v1/deployer.pb.h"
#include "ferry/v1/planner.pb.h"

namespace ferry::planner {

// Removes target-managed fields (status, metadata.uid, resourceVersion,
// generation, creationTimestamp, managedFields, selfLink) from a copy of
// `object`.
nlohmann::json NormalizeObject(const nlohmann::json& object);

// Removes the fields named by the ignore rules that match `ref` (RFC 6901
// pointers; absent pointers are skipped).
void ApplyIgnoreDifferences(const v1::ObjectRef& ref, const std::vector<v1::IgnoreDifference>& rules,
                            nlohmann::json& object);

// A line-based unified diff of two texts with 3 lines of context; "" when
// equal.
std::string UnifiedDiff(const std::string& from, const std::string& to, const std::string& from_label,
                        const std::string& to_label);

struct DiffOptions {
  bool prune = false;  // emit DELETE for managed live objects that are no longer desired
  std::vector<v1::IgnoreDifference> ignore;
};

// Diffs desired objects against live ones (three-way, with the last applied
// object): live fields absent from both the desired object and the last
// applied one are target defaults, and desired fields the target does not
// report but that equal the last applied value are unobserved; neither shows
// as a difference. Normalisation and ignore rules apply to both sides. Returns the actions ordered by sync wave, then identity, with
// deletions last (highest wave first). A live object counts as managed when
// it has applied_json. Thread-compatible; pure.
std::vector<v1::PlanAction> DiffObjects(const std::vector<v1::Manifest>& desired,
                                        const std::vector<v1::LiveObject>& live, const DiffOptions& options);

// True when some action is not a NOOP.
bool HasChanges(const std::vector<v1::PlanAction>& actions);

}  // namespace ferry::planner
