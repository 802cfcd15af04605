#pragma once

#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "common/auth/tls.h"
#include "common/config/service_config.h"
#include "common/postgres/connection_pool.h"
#include "common/postgres/migrator.h"
#include "common/server/server_runner.h"

namespace ferry::server {

// What every service builds before its own parts: its TLS settings, a
// migrated database pool and a server runner, all configured from the common
// flags.
struct Infrastructure {
  // Never null; plaintext() only with --insecure-plaintext. Channels to the
  // other services: tls->Channel(address, "planner").
  std::shared_ptr<const auth::Tls> tls;
  std::unique_ptr<postgres::ConnectionPool> pool;
  std::unique_ptr<ServerRunner> runner;
};

// The service's TLS from --tls-ca-file, --tls-cert-file and --tls-key-file,
// checked (errors name the flag and the file). Without them it refuses to
// start (FAILED_PRECONDITION saying how to make certificates with
// scripts/ferry-certs, or to pass --insecure-plaintext for development);
// with --insecure-plaintext (and no --tls-* flag) it is plaintext.
absl::StatusOr<std::shared_ptr<const auth::Tls>> LoadTls(const config::ServiceConfig& config);

// Loads the TLS settings (LoadTls), connects to PostgreSQL (retrying as
// configured and saying so in the log), migrates `migrations` and the schema
// `access` that every service shares (API tokens, common/auth/schema), and
// prepares a runner. Returns the first error; the caller prints it as one
// line and exits non-zero.
absl::StatusOr<Infrastructure> Bootstrap(const config::ServiceConfig& config,
                                         const postgres::MigrationSet& migrations);

// The owner of every Ferry schema with per-service database roles (NOLOGIN;
// helm/ferry/files/db-roles.sql creates it).
inline constexpr char kSchemaOwnerRole[] = "ferry_owner";

// --migrate-only: connects with --database-url (the migration role, a
// member of ferry_owner), migrates `migrations` and the schema `access` as
// ferry_owner (postgres::MigrateAsOwner, which also grants the services'
// login roles their privileges) and returns the process exit code: 0 when
// done, 1 after logging the error. Needs neither TLS nor the access flags.
int MigrateOnly(const config::ServiceConfig& config, const postgres::MigrationSet& migrations);

// Starts `runner`, waits for SIGTERM/SIGINT, drains, and returns the process
// exit code: 0 after a clean stop, 1 if the server could not start.
// Each SIGHUP meanwhile runs `on_hangup`.
int ServeUntilSignal(ServerRunner& runner, const std::function<void()>& on_hangup = nullptr);

}  // namespace ferry::server
