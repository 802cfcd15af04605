// Fuzz target: the ferry.yaml parser (services/planner/declarative_config.h)
// and the validation its applications and environments then go through.

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "fuzz/fuzz_support.h"
#include "services/planner/declarative_config.h"
#include "services/planner/validation.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<ferry::planner::DeclaredConfig> config =
      ferry::planner::ParseDeclarativeConfig(text, "ferry.yaml", "fuzz-repo", "main");
  if (!config.ok()) {
    if (config.status().message().empty()) ferry::fuzz::Violated("error without a message", "");
    return 0;
  }
  std::map<std::string, ferry::v1::Environment> environments;
  for (const ferry::v1::Environment& env : config->environments) environments.emplace(env.id(), env);
  std::set<std::string> environment_ids;
  for (const auto& [id, env] : environments) {
    if (ferry::planner::ValidateEnvironment(env, environments).ok()) environment_ids.insert(id);
  }
  std::map<std::string, ferry::v1::Application> applications;
  for (ferry::v1::Application& app : config->applications) {
    if (ferry::planner::ValidateApplication(app, environment_ids).ok()) applications.emplace(app.id(), app);
  }
  if (ferry::planner::ValidateDependsOn(applications).ok()) ferry::planner::TopologicalOrder(applications);
  return 0;
}
