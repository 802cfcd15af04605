#include "common/config/service_config.h"

#include <cctype>

#include "absl/strings/str_cat.h"

namespace ferry::config {

ServiceConfig DefaultsFor(std::string service_name, int grpc_port, int metrics_port) {
  ServiceConfig config;
  config.service_name = std::move(service_name);
  config.grpc_address = absl::StrCat("127.0.0.1:", grpc_port);
  config.metrics_address = absl::StrCat("127.0.0.1:", metrics_port);
  return config;
}

std::string EnvNameFor(const std::string& flag) {
  std::string env = "FERRY_";
  size_t i = flag.find_first_not_of('-');
  for (; i != std::string::npos && i < flag.size(); ++i) {
    char c = flag[i];
    env += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return env;
}

CLI::Validator DurationValidator() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        absl::Duration d;
        if (!absl::ParseDuration(value, &d)) {
          return absl::StrCat("'", value, "' is not a duration (use a number with a unit: 500ms, 30s, 2m)");
        }
        if (d < absl::ZeroDuration()) return absl::StrCat("'", value, "' is negative");
        return "";
      },
      "DURATION");
}

CLI::Option* AddDurationFlag(CLI::App& app, const std::string& name, absl::Duration& out, const std::string& help) {
  auto* option = app.add_option_function<std::string>(
      name,
      [&out](const std::string& value) { absl::ParseDuration(value, &out); },
      absl::StrCat(help, " (default ", absl::FormatDuration(out), ")"));
  option->check(DurationValidator())->envname(EnvNameFor(name));
  return option;
}

void AddServiceFlags(CLI::App& app, ServiceConfig& config) {
  auto env = [](const char* flag) { return EnvNameFor(flag); };
  app.add_option("--database-url", config.database_url,
                 "PostgreSQL connection URL (postgresql://user:pass@host:port/db or key=value form)")
      ->envname(env("--database-url"))
      ->required();
  AddFlag(app, "--grpc-address", config.grpc_address, "host:port for the gRPC API; port 0 picks a free one");
  AddFlag(app, "--metrics-address", config.metrics_address, "host:port for Prometheus /metrics; port 0 picks one");
  AddFlag(app, "--threads", config.threads, "gRPC handler threads for unary calls (streams have their own)")
      ->check(CLI::Range(2, 1024));
  AddFlag(app, "--max-streams", config.max_streams,
          "open streams per streaming RPC (each holds a thread); more are refused with RESOURCE_EXHAUSTED")
      ->check(CLI::Range(1, 1024));
  AddFlag(app, "--reserved-service-streams", config.reserved_service_streams,
          "further streams per streaming RPC kept for Ferry services (callers with a service certificate)")
      ->check(CLI::Range(0, 256));
  AddFlag(app, "--db-pool-size", config.db_pool_size, "PostgreSQL connections kept by the pool")
      ->check(CLI::Range(1, 256));
  AddFlag(app, "--log-level", config.log_level, "trace, debug, info, warn or error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  AddFlag(app, "--audit-address", config.audit_address, "host:port of ferry-audit, for the audit outbox");
  AddFlag(app, "--outbox-max-batch-bytes", config.outbox_max_batch_bytes,
          "largest batch of audit events the outbox sends at once, in bytes (ferry-audit receives at most 4 MiB)")
      ->check(CLI::Range(size_t{64} << 10, size_t{4} << 20));
  app.add_option("--port-file", config.port_file, "write the bound ports to this file once listening")
      ->envname(env("--port-file"));
  AddFlag(app, "--tls-ca-file", config.tls_ca_file, "PEM file of the CA that signs the suite's certificates");
  AddFlag(app, "--tls-cert-file", config.tls_cert_file, "PEM file of this service's certificate");
  AddFlag(app, "--tls-key-file", config.tls_key_file, "PEM file of this service's private key");
  // Flags, not options: given bare (--insecure-plaintext), or
  // FERRY_INSECURE_PLAINTEXT=true in the environment.
  app.add_flag("--insecure-plaintext", config.insecure_plaintext,
               "development only: serve and call without TLS (refused unless given explicitly)")
      ->envname(env("--insecure-plaintext"));
  AddFlag(app, "--metrics-tls-cert-file", config.metrics_tls_cert_file,
          "PEM certificate of the /metrics endpoint: serve it over HTTPS (with --metrics-tls-key-file)");
  AddFlag(app, "--metrics-tls-key-file", config.metrics_tls_key_file, "PEM private key of the /metrics endpoint");
  AddFlag(app, "--access-policy-file", config.access_policy_file,
          "the access policy (YAML, docs/security.md); re-read when it changes and on SIGHUP");
  AddFlag(app, "--token-key-file", config.token_key_file,
          "secret key of API tokens' keyed hashes (the same file for every service)");
  app.add_flag("--insecure-no-auth", config.insecure_no_auth,
               "development only: no authentication or authorization; every call is allowed")
      ->envname(env("--insecure-no-auth"));
  app.add_flag("--migrate-only", config.migrate_only,
               "migrate this service's schema as the owner role ferry_owner (--database-url is then the migration "
               "role's, e.g. ferry_migrator), grant the services' login roles, and exit; the services then run "
               "with their own login roles (docs/operations.md)")
      ->envname(env("--migrate-only"));
  AddDurationFlag(app, "--drain-timeout", config.drain_timeout, "how long SIGTERM waits for in-flight RPCs");
  AddDurationFlag(app, "--db-connect-timeout", config.db_connect_timeout,
                  "how long start-up retries an unreachable database before giving up");
}

}  // namespace ferry::config
