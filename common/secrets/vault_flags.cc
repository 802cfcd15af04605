#include "common/secrets/vault_flags.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/config/service_config.h"
#include "common/secrets/curl_vault_http.h"
#include "common/status/status_macros.h"

namespace ferry::secrets {
namespace {

absl::Status CheckReadable(const std::string& path, const std::string& flag) {
  if (access(path.c_str(), R_OK) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read \"", path, "\""));
  }
  return absl::OkStatus();
}

}  // namespace

void AddVaultFlags(CLI::App& app, VaultFlags& flags) {
  config::AddFlag(app, "--vault-address", flags.address,
                  "HashiCorp Vault to read `vault` secret references from (https://host:port). Empty: Vault "
                  "references are refused");
  config::AddFlag(app, "--vault-ca-file", flags.ca_file,
                  "PEM CAs that sign Vault's certificate (default: the system's); verification is always on");
  config::AddFlag(app, "--vault-namespace", flags.vault_namespace, "Vault Enterprise namespace (X-Vault-Namespace)");
  config::AddFlag(app, "--vault-token-file", flags.token_file,
                  "file holding the Vault token (read again when Vault refuses it, e.g. rotated by Vault Agent)");
  config::AddFlag(app, "--vault-approle-role-id-file", flags.approle_role_id_file,
                  "file holding the AppRole role_id (with --vault-approle-secret-id-file, instead of a token)");
  config::AddFlag(app, "--vault-approle-secret-id-file", flags.approle_secret_id_file,
                  "file holding the AppRole secret_id (read again at each login)");
  config::AddFlag(app, "--vault-approle-mount", flags.approle_mount, "path of the AppRole auth method (auth/<mount>)");
  config::AddFlag(app, "--vault-kv-mount", flags.kv_mount, "path of the KV version 2 secrets engine references read");
  config::AddDurationFlag(app, "--vault-timeout", flags.timeout, "longest time one request to Vault may take");
  config::AddDurationFlag(app, "--vault-cache-ttl", flags.cache_ttl,
                          "how long a value read from Vault is reused (0: ask Vault every time)");
  // No environment fallback: a test-only switch is given on the command line.
  app.add_flag("--test-only-vault-allow-http-to-loopback", flags.test_only_allow_http_to_loopback,
               "TESTS ONLY: accept an http:// --vault-address on 127.0.0.0/8, [::1] or localhost (a Vault dev "
               "server); otherwise only https://");
}

absl::StatusOr<std::unique_ptr<VaultKvClient>> MakeVaultClient(const VaultFlags& flags, const Clock* clock) {
  if (flags.address.empty()) {
    for (const auto& [value, flag] : {std::pair{&flags.token_file, "--vault-token-file"},
                                      std::pair{&flags.approle_role_id_file, "--vault-approle-role-id-file"},
                                      std::pair{&flags.approle_secret_id_file, "--vault-approle-secret-id-file"}}) {
      if (!value->empty()) return absl::InvalidArgumentError(absl::StrCat(flag, ": needs --vault-address"));
    }
    return std::unique_ptr<VaultKvClient>();
  }
  if (flags.timeout <= absl::ZeroDuration()) return absl::InvalidArgumentError("--vault-timeout: must be positive");
  if (flags.cache_ttl < absl::ZeroDuration()) return absl::InvalidArgumentError("--vault-cache-ttl: must not be negative");
  VaultKvOptions options;
  options.kv_mount = flags.kv_mount;
  options.cache_ttl = flags.cache_ttl;
  RETURN_IF_ERROR(VaultKvClient::CheckPath(flags.kv_mount).ok()
                      ? absl::OkStatus()
                      : absl::InvalidArgumentError("--vault-kv-mount: must be a path such as \"secret\""));
  const bool token = !flags.token_file.empty();
  const bool approle = !flags.approle_role_id_file.empty() || !flags.approle_secret_id_file.empty();
  if (token == approle) {
    return absl::InvalidArgumentError(
        "--vault-address: give either --vault-token-file or --vault-approle-role-id-file with "
        "--vault-approle-secret-id-file");
  }
  if (token) {
    RETURN_IF_ERROR(CheckReadable(flags.token_file, "--vault-token-file"));
    options.auth.kind = VaultAuth::Kind::kToken;
    options.auth.token_file = flags.token_file;
  } else {
    if (flags.approle_role_id_file.empty() || flags.approle_secret_id_file.empty()) {
      return absl::InvalidArgumentError(
          "--vault-approle-role-id-file and --vault-approle-secret-id-file: give both or neither");
    }
    RETURN_IF_ERROR(VaultKvClient::CheckPath(flags.approle_mount).ok()
                        ? absl::OkStatus()
                        : absl::InvalidArgumentError("--vault-approle-mount: must be a path such as \"approle\""));
    RETURN_IF_ERROR(CheckReadable(flags.approle_role_id_file, "--vault-approle-role-id-file"));
    RETURN_IF_ERROR(CheckReadable(flags.approle_secret_id_file, "--vault-approle-secret-id-file"));
    options.auth.kind = VaultAuth::Kind::kAppRole;
    options.auth.role_id_file = flags.approle_role_id_file;
    options.auth.secret_id_file = flags.approle_secret_id_file;
    options.auth.approle_mount = flags.approle_mount;
  }
  ASSIGN_OR_RETURN(std::unique_ptr<CurlVaultHttp> http,
                   CurlVaultHttp::Create({.address = flags.address,
                                          .ca_file = flags.ca_file,
                                          .vault_namespace = flags.vault_namespace,
                                          .test_only_allow_http_to_loopback = flags.test_only_allow_http_to_loopback,
                                          .timeout = flags.timeout}));
  return std::make_unique<VaultKvClient>(std::move(http), std::move(options), clock);
}

VaultLookup LookupOf(VaultKvClient* client) {
  if (client == nullptr) return {};
  return [client](const std::string& path, const std::string& field) { return client->Read(path, field); };
}

}  // namespace ferry::secrets
