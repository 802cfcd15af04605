#pragma once

#include <string>

#include "absl/status/status.h"

namespace ferry::deployer {

// "app/env": the key of an (application, environment) in maps, logs and
// idempotency keys.
inline std::string AppKey(const std::string& app, const std::string& env) { return app + "/" + env; }

// INVALID_ARGUMENT naming the first missing id of a request.
inline absl::Status RequireIds(const std::string& app, const std::string& env) {
  if (app.empty()) return absl::InvalidArgumentError("application_id is required");
  if (env.empty()) return absl::InvalidArgumentError("environment_id is required");
  return absl::OkStatus();
}

}  // namespace ferry::deployer
