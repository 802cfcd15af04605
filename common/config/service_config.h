#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "absl/time/time.h"

namespace ferry::config {

// Settings every Ferry service takes. Each is a flag, and each flag falls
// back to an environment variable FERRY_<FLAG_IN_UPPER_SNAKE_CASE> (for
// example --database-url and FERRY_DATABASE_URL). A flag wins over the
// environment; a bad value of either stops the program with a message that
// names the flag and the value.
struct ServiceConfig {
  std::string service_name;
  std::string database_url;
  std::string grpc_address;
  std::string metrics_address;
  int threads = 16;
  // Open streams per server-streaming RPC (common/server/stream_limiter.h).
  int max_streams = 16;
  int reserved_service_streams = 4;
  absl::Duration drain_timeout = absl::Seconds(10);
  absl::Duration db_connect_timeout = absl::Seconds(30);
  int db_pool_size = 8;
  std::string log_level = "info";
  // Where the audit service listens; the outbox forwarder delivers there.
  std::string audit_address = "127.0.0.1:7004";
  // Largest batch of audit events the outbox sends at once (bytes).
  size_t outbox_max_batch_bytes = 1 << 20;
  // When set, the bound ports are written there once listening ("grpc=N" and
  // "metrics=N" lines). Lets tests and scripts use port 0.
  std::string port_file;
  // TLS on the gRPC port and to the other services (common/auth/tls.h).
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  bool insecure_plaintext = false;  // development only: no TLS, said loudly at start
  // Optional TLS of the /metrics endpoint (PEM certificate and key).
  std::string metrics_tls_cert_file;
  std::string metrics_tls_key_file;
  // Access control (common/auth/access_control.h, docs/security.md).
  std::string access_policy_file;   // the operator's policy YAML; required unless insecure_no_auth
  std::string token_key_file;       // the key of API tokens' keyed hashes; shared by the services
  bool insecure_no_auth = false;    // development only: every call allowed, said loudly at start
  // --migrate-only: migrate the service's schema and `access` as the owner
  // role ferry_owner, grant the services' login roles, and exit
  // (server::MigrateOnly; docs/operations.md "Database roles").
  bool migrate_only = false;
};

// Defaults for one service: its name and its default listening ports.
ServiceConfig DefaultsFor(std::string service_name, int grpc_port, int metrics_port);

// Registers the common flags on `app`, writing into `config`.
void AddServiceFlags(CLI::App& app, ServiceConfig& config);

// A CLI11 validator accepting absl durations such as "500ms", "30s", "2m".
CLI::Validator DurationValidator();

// Registers a duration flag (with env fallback) bound to `out`.
CLI::Option* AddDurationFlag(CLI::App& app, const std::string& name, absl::Duration& out, const std::string& help);

// The environment variable a flag falls back to: "--db-pool-size" -> "FERRY_DB_POOL_SIZE".
std::string EnvNameFor(const std::string& flag);

// Registers a flag bound to `out` that falls back to the environment
// variable EnvNameFor(name), with `out`'s value shown as the default. Chain
// ->check(...) on the result for a validator.
template <typename T>
CLI::Option* AddFlag(CLI::App& app, const std::string& name, T& out, const std::string& help) {
  return app.add_option(name, out, help)->envname(EnvNameFor(name))->capture_default_str();
}

}  // namespace ferry::config
