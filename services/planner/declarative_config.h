#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ferry/v1/planner.pb.h"

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
// (environments, dependsOn) are checked by the caller.
absl::StatusOr<DeclaredConfig> ParseDeclarativeConfig(const std::string& text, const std::string& file,
                                                      const std::string& repository_id, const std::string& ref);

}  // namespace ferry::planner
