// ferry-deployer: executes plans against targets with health gates and rollback

#include <CLI/CLI.hpp>

#include "common/config/service_config.h"
#include "common/logging/logger.h"
#include "common/server/service_bootstrap.h"
#include "services/deployer/deployer_service.h"
#include "deployer_migrations.h"

int main(int argc, char** argv) {
  ferry::server::BlockTerminationSignals();
  ferry::config::ServiceConfig config = ferry::config::DefaultsFor("deployer", 7003, 9103);
  CLI::App app{"ferry-deployer: executes plans against targets with health gates and rollback"};
  ferry::config::AddServiceFlags(app, config);
  CLI11_PARSE(app, argc, argv);
  ferry::logging::Init("deployer", config.log_level);

  absl::StatusOr<ferry::server::Infrastructure> infra = ferry::server::Bootstrap(config, DeployerMigrations());
  if (!infra.ok()) {
    ferry::logging::Error("cannot start", {{"error", infra.status().ToString()}});
    return 1;
  }
  ferry::deployer::DeployerService service;
  infra->runner->AddService(&service);
  return ferry::server::ServeUntilSignal(*infra->runner);
}
