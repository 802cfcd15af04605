#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ferry/v1/planner.pb.h"
#include "services/planner/parse_limits.h"
#include "services/planner/sync_window.h"

namespace ferry::planner {

// Applications and environments declared in one ferry.yaml.
struct DeclaredConfig {
  std::vector<v1::Environment> environments;
  std::vector<v1::Application> applications;
};

// Parses a ferry.yaml (format in README.md, "## planner"). Applications
// default to the repository and ref holding the file. Returns
// INVALID_ARGUMENT "<file>:<line>: <field>: <problem>" for malformed YAML,
// unknown keys, unknown render methods and bad values. Cross-references
// (environments, dependsOn) are checked by the caller. The YAML is read
// within `limits` first (nodes after alias expansion, depth, scalar bytes:
// bounded_yaml_reader.h; RESOURCE_EXHAUSTED "<file>:<line>: ... (limit
// --<flag>)"), and an environment's syncWindows within `windows` (count).
absl::StatusOr<DeclaredConfig> ParseDeclarativeConfig(const std::string& text, const std::string& file,
                                                      const std::string& repository_id, const std::string& ref,
                                                      const ParseLimits& limits = ParseLimits(),
                                                      const SyncWindowLimits& windows = SyncWindowLimits());

}  // namespace ferry::planner
