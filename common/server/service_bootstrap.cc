#include "common/server/service_bootstrap.h"

#include <csignal>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "access_migrations.h"
#include "common/logging/logger.h"

namespace ferry::server {

absl::StatusOr<std::shared_ptr<const auth::Tls>> LoadTls(const config::ServiceConfig& config) {
  std::vector<std::string> given, missing;
  for (const auto& [flag, value] : {std::pair<std::string, std::string>{"--tls-ca-file", config.tls_ca_file},
                                    {"--tls-cert-file", config.tls_cert_file},
                                    {"--tls-key-file", config.tls_key_file}}) {
    (value.empty() ? missing : given).push_back(flag);
  }
  if (config.insecure_plaintext) {
    if (!given.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--insecure-plaintext turns TLS off, yet ",
                                                     absl::StrJoin(given, ", "), " given: pass one or the other"));
    }
    return auth::Tls::Plaintext();
  }
  if (given.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no TLS certificate: ferry-", config.service_name,
        " serves and calls the other services over mutual TLS. Make a CA and the services' certificates with "
        "`scripts/ferry-certs DIR` and pass --tls-ca-file=DIR/ca.pem --tls-cert-file=DIR/", config.service_name,
        ".pem --tls-key-file=DIR/", config.service_name,
        "-key.pem (or FERRY_TLS_CA_FILE, FERRY_TLS_CERT_FILE, FERRY_TLS_KEY_FILE); for development only, "
        "--insecure-plaintext runs without TLS"));
  }
  if (!missing.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(absl::StrJoin(given, ", "), " given without ",
                                                   absl::StrJoin(missing, ", "),
                                                   ": TLS needs the CA, the certificate and its key"));
  }
  return auth::Tls::Load(
      {.ca_file = config.tls_ca_file, .cert_file = config.tls_cert_file, .key_file = config.tls_key_file});
}

absl::StatusOr<Infrastructure> Bootstrap(const config::ServiceConfig& config,
                                         const postgres::MigrationSet& migrations) {
  // Debian's Abseil is built in debug mode, where every absl::Mutex lock
  // (gRPC's own among them) also updates a global lock-order graph to detect
  // deadlocks. A service has no use for that at run time; tests keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // A peer that closes its socket while we write (a webhook sender, a probed
  // process) must be an EPIPE error, not a SIGPIPE that ends the service:
  // cpp-httplib 0.11 does not send with MSG_NOSIGNAL. (civetweb, behind the
  // metrics endpoint, also ignores SIGPIPE when it starts; this does not
  // depend on that.)
  std::signal(SIGPIPE, SIG_IGN);
  Infrastructure infra;
  absl::StatusOr<std::shared_ptr<const auth::Tls>> tls = LoadTls(config);
  if (!tls.ok()) return tls.status();
  infra.tls = std::move(*tls);
  absl::StatusOr<std::unique_ptr<postgres::ConnectionPool>> pool = postgres::ConnectionPool::Connect(
      {.url = config.database_url, .size = config.db_pool_size, .connect_timeout = config.db_connect_timeout});
  if (!pool.ok()) return pool.status();
  infra.pool = std::move(*pool);
  logging::Info("database connected", {{"database", infra.pool->address()}});
  absl::Status migrated = postgres::Migrate(*infra.pool, migrations);
  if (!migrated.ok()) return migrated;
  // The schema `access` (API tokens) is every service's: each verifies
  // tokens. The migrator's advisory lock makes services that start together
  // migrate it once.
  migrated = postgres::Migrate(*infra.pool, AccessMigrations());
  if (!migrated.ok()) return migrated;
  infra.runner = std::make_unique<ServerRunner>(ServerOptions{
      .service_name = config.service_name,
      .grpc_address = config.grpc_address,
      .metrics_address = config.metrics_address,
      .threads = config.threads,
      .max_streams = config.max_streams,
      .reserved_service_streams = config.reserved_service_streams,
      .drain_timeout = config.drain_timeout,
      .port_file = config.port_file,
      .tls = infra.tls,
      .metrics_tls_cert_file = config.metrics_tls_cert_file,
      .metrics_tls_key_file = config.metrics_tls_key_file,
  });
  return infra;
}

int MigrateOnly(const config::ServiceConfig& config, const postgres::MigrationSet& migrations) {
  absl::StatusOr<std::unique_ptr<postgres::ConnectionPool>> pool = postgres::ConnectionPool::Connect(
      {.url = config.database_url, .size = 1, .connect_timeout = config.db_connect_timeout});
  absl::Status status = pool.status();
  if (status.ok()) status = postgres::MigrateAsOwner(**pool, migrations, kSchemaOwnerRole);
  if (status.ok()) status = postgres::MigrateAsOwner(**pool, AccessMigrations(), kSchemaOwnerRole);
  if (!status.ok()) {
    logging::Error("cannot migrate", {{"error", status.ToString()}});
    return 1;
  }
  logging::Info("migrated; exiting (--migrate-only)",
                {{"database", (*pool)->address()}, {"schemas", std::vector<std::string>{migrations.schema, "access"}},
                 {"owner", kSchemaOwnerRole}});
  return 0;
}

int ServeUntilSignal(ServerRunner& runner, const std::function<void()>& on_hangup) {
  absl::Status started = runner.Start();
  if (!started.ok()) {
    logging::Error("cannot start", {{"error", started.ToString()}});
    // The gRPC server may already be serving (a later step failed): stop it
    // now, while the services and shutdown hooks it uses are still alive.
    runner.Shutdown();
    return 1;
  }
  int sig = WaitForTerminationSignal(on_hangup);
  logging::Info("draining", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  runner.Shutdown();
  return 0;
}

}  // namespace ferry::server
