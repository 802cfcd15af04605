// ferry-planner: renders desired state from Git, diffs it and persists plans

#include <CLI/CLI.hpp>

#include "common/config/service_config.h"
#include "common/logging/logger.h"
#include "common/server/service_bootstrap.h"
#include "services/planner/planner_service.h"
#include "planner_migrations.h"

int main(int argc, char** argv) {
  ferry::server::BlockTerminationSignals();
  ferry::config::ServiceConfig config = ferry::config::DefaultsFor("planner", 7002, 9102);
  CLI::App app{"ferry-planner: renders desired state from Git, diffs it and persists plans"};
  ferry::config::AddServiceFlags(app, config);
  CLI11_PARSE(app, argc, argv);
  ferry::logging::Init("planner", config.log_level);

  absl::StatusOr<ferry::server::Infrastructure> infra = ferry::server::Bootstrap(config, PlannerMigrations());
  if (!infra.ok()) {
    ferry::logging::Error("cannot start", {{"error", infra.status().ToString()}});
    return 1;
  }
  ferry::planner::PlannerService service;
  infra->runner->AddService(&service);
  return ferry::server::ServeUntilSignal(*infra->runner);
}
