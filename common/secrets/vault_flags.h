#pragma once

#include <functional>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "common/secrets/vault_kv_client.h"

namespace ferry::secrets {

// The --vault-* flags a service that reads secrets from Vault takes (the
// repo-watcher, the deployer).
struct VaultFlags {
  std::string address = "";  // empty: no Vault; Vault references are refused
  std::string ca_file = "";
  std::string vault_namespace = "";
  std::string token_file = "";
  std::string approle_role_id_file = "";
  std::string approle_secret_id_file = "";
  std::string approle_mount = "approle";
  std::string kv_mount = "secret";
  absl::Duration timeout = absl::Seconds(10);
  absl::Duration cache_ttl = absl::Seconds(30);
  bool test_only_allow_http_to_loopback = false;
};

// Registers --vault-address, --vault-ca-file, --vault-namespace,
// --vault-token-file, --vault-approle-role-id-file,
// --vault-approle-secret-id-file, --vault-approle-mount, --vault-kv-mount,
// --vault-timeout and --vault-cache-ttl (each with its FERRY_<FLAG>
// environment fallback) and the test-only
// --test-only-vault-allow-http-to-loopback (command line only).
void AddVaultFlags(CLI::App& app, VaultFlags& flags);

// The client the flags describe; nullptr when --vault-address is empty.
// INVALID_ARGUMENT naming the flag when the address is not https:// (or
// loopback http:// with the test-only flag), when neither or both of token
// and AppRole are given, when only one AppRole file is, or when a file
// cannot be read now. Nothing is sent to Vault here: a Vault that is down
// at start is not a reason to stop.
absl::StatusOr<std::unique_ptr<VaultKvClient>> MakeVaultClient(const VaultFlags& flags, const Clock* clock);

// `client->Read` as the lookup the secret resolvers take; an empty function
// when `client` is null.
using VaultLookup = std::function<absl::StatusOr<std::string>(const std::string& path, const std::string& field)>;
VaultLookup LookupOf(VaultKvClient* client);

}  // namespace ferry::secrets
