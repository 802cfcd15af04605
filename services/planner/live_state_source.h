#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ferry/v1/deployer.pb.h"

namespace ferry::planner {

// Live state of an application in an environment, observed by the deployer.
// Thread-safe.
class LiveStateSource {
 public:
  virtual ~LiveStateSource() = default;
  // Observes now. `desired` are the rendered objects, included even when
  // not yet managed; a target that can dry-run an apply (Kubernetes) gets
  // them whole and fills each one's dry_run_json and conflict.
  // UNAVAILABLE/UNIMPLEMENTED when the deployer cannot answer.
  virtual absl::StatusOr<v1::LiveState> Observe(const std::string& application_id, const std::string& environment_id,
                                                const v1::DeployTarget& target,
                                                const std::vector<v1::Manifest>& desired) = 0;
};

}  // namespace ferry::planner
