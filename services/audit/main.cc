// ferry-audit: the append-only, hash-chained audit log

#include <CLI/CLI.hpp>

#include "common/config/service_config.h"
#include "common/logging/logger.h"
#include "common/server/service_bootstrap.h"
#include "services/audit/audit_service.h"
#include "audit_migrations.h"

int main(int argc, char** argv) {
  ferry::server::BlockTerminationSignals();
  ferry::config::ServiceConfig config = ferry::config::DefaultsFor("audit", 7004, 9104);
  CLI::App app{"ferry-audit: the append-only, hash-chained audit log"};
  ferry::config::AddServiceFlags(app, config);
  CLI11_PARSE(app, argc, argv);
  ferry::logging::Init("audit", config.log_level);

  absl::StatusOr<ferry::server::Infrastructure> infra = ferry::server::Bootstrap(config, AuditMigrations());
  if (!infra.ok()) {
    ferry::logging::Error("cannot start", {{"error", infra.status().ToString()}});
    return 1;
  }
  ferry::audit::AuditService service;
  infra->runner->AddService(&service);
  return ferry::server::ServeUntilSignal(*infra->runner);
}
