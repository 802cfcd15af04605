// ferry-repo-watcher: Git mirrors, webhooks, signature checks and the revision stream

#include <CLI/CLI.hpp>

#include "common/config/service_config.h"
#include "common/logging/logger.h"
#include "common/server/service_bootstrap.h"
#include "services/repo-watcher/repo_watcher_service.h"
#include "repo_watcher_migrations.h"

int main(int argc, char** argv) {
  ferry::server::BlockTerminationSignals();
  ferry::config::ServiceConfig config = ferry::config::DefaultsFor("repo-watcher", 7001, 9101);
  CLI::App app{"ferry-repo-watcher: Git mirrors, webhooks, signature checks and the revision stream"};
  ferry::config::AddServiceFlags(app, config);
  CLI11_PARSE(app, argc, argv);
  ferry::logging::Init("repo-watcher", config.log_level);

  absl::StatusOr<ferry::server::Infrastructure> infra = ferry::server::Bootstrap(config, RepoWatcherMigrations());
  if (!infra.ok()) {
    ferry::logging::Error("cannot start", {{"error", infra.status().ToString()}});
    return 1;
  }
  ferry::repo_watcher::RepoWatcherService service;
  infra->runner->AddService(&service);
  return ferry::server::ServeUntilSignal(*infra->runner);
}
