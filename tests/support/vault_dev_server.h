#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"

namespace ferry::testing {

// A real Vault-API server in dev mode (`server -dev`: in memory, unsealed,
// KV version 2 at secret/) on a free loopback port: OpenBao, the fork of
// HashiCorp Vault with the same HTTP API, from scripts/install-openbao
// (.tools/openbao/<version>/bin/bao, installed by scripts/install-deps), or
// the `vault` binary $FERRY_VAULT_BIN names. Killed with the object (and
// with the test process). The helpers configure it over its HTTP API with
// the root token.
class VaultDevServer {
 public:
  // The binary: $FERRY_VAULT_BIN, else OpenBao.
  static std::string BinaryPath();
  // FAILED_PRECONDITION when the binary is missing (run scripts/install-openbao);
  // UNAVAILABLE when it does not answer within 30 s. With `tls_dir`, it
  // serves HTTPS with a certificate of its own CA written there (-dev-tls;
  // ca_file()); the helpers below then do not work (use `vault` itself).
  static absl::StatusOr<std::unique_ptr<VaultDevServer>> Start(const std::string& tls_dir = "");
  ~VaultDevServer();

  std::string address() const;  // http://127.0.0.1:<port> (https:// with TLS)
  std::string ca_file() const { return tls_dir_ + "/vault-ca.pem"; }
  const std::string& root_token() const { return root_token_; }
  std::string Log() const;

  // One API call with the root token: `method` "GET", "POST", "PUT" or
  // "DELETE" on /v1/<path>. The answer's JSON (null when empty); an error
  // naming the call and Vault's answer for a status other than 2xx.
  absl::StatusOr<nlohmann::json> Call(const std::string& method, const std::string& path,
                                      const nlohmann::json& body = nullptr) const;

  // Writes `data` as the new version of secret/<path> (KV v2).
  absl::Status WriteKv(const std::string& path, const nlohmann::json& data) const;
  // A policy `name` allowing read of secret/data/<path_glob>.
  absl::Status ReadPolicy(const std::string& name, const std::string& path_glob) const;
  // Enables AppRole at auth/approle/ (once) and makes role `role` with
  // `policy` and a token TTL of `token_ttl_seconds`; writes its role_id.
  absl::StatusOr<std::string> AppRole(const std::string& role, const std::string& policy, int token_ttl_seconds) const;
  // A new secret_id of `role`.
  absl::StatusOr<std::string> NewSecretId(const std::string& role) const;
  // A token with `policy`, `ttl_seconds` long.
  absl::StatusOr<std::string> Token(const std::string& policy, int ttl_seconds) const;

 private:
  VaultDevServer() = default;

  pid_t pid_ = -1;
  int port_ = 0;
  std::string dir_;
  std::string root_token_;
  std::string tls_dir_;
  mutable bool approle_enabled_ = false;
};

}  // namespace ferry::testing
