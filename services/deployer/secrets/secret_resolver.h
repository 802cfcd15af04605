#pragma once

#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/secrets/sealed_box.h"
#include "common/secrets/secret_sources.h"
#include "services/deployer/secrets/secret_ref.h"

namespace ferry::deployer::secrets {

// Reads one field of a Vault KV v2 secret (common/secrets/vault_kv, wired in
// main.cc). Errors name the path and field, never the value.
using VaultLookup = std::function<absl::StatusOr<std::string>(const std::string& path, const std::string& field)>;

// The deployer's secret sources, from its flags.
struct SecretResolverOptions {
  // --secrets-key-file: opens sealed values and keys the digests shown
  // instead of secret values. Without it no secretRef resolves.
  std::optional<ferry::secrets::SealedBoxKey> key;
  // --age-identity-file: decrypts age files (`age -d -i`). Empty: age files
  // are refused.
  std::string age_identity_file;
  std::string age_binary = "age";
  absl::Duration age_timeout = absl::Seconds(10);
  // --secrets-dir and --secret-env-prefix (the repo-watcher's rules).
  std::optional<ferry::secrets::SecretSources> sources;
  // --vault-address: null refuses vault references.
  VaultLookup vault;
};

// Resolves application secrets at apply time. Every error names the
// reference (SecretRef::field, which the caller prefixes with the object)
// and what is wrong, never the value. Immutable; thread-safe.
class SecretResolver {
 public:
  explicit SecretResolver(SecretResolverOptions options) : options_(std::move(options)) {}

  // The value `ref` names. kEncryptedFile needs ref.ciphertext (the file's
  // bytes). INVALID_ARGUMENT for a bad reference or a file that does not
  // decrypt; FAILED_PRECONDITION for a source the deployer was not given or
  // an age that cannot run or finish; Vault's own codes (UNAVAILABLE when it
  // cannot be reached: the plan is retried).
  absl::StatusOr<std::string> Resolve(const SecretRef& ref) const;

  // The keyed digest of a value (SealedBoxKey::Digest). FAILED_PRECONDITION
  // without --secrets-key-file.
  absl::StatusOr<std::string> Digest(const std::string& value) const;

 private:
  absl::StatusOr<std::string> Decrypt(const SecretRef& ref) const;
  absl::StatusOr<std::string> DecryptAge(const SecretRef& ref) const;

  const SecretResolverOptions options_;
};

// Reads the deployer's secrets key file; refused when every user may read it.
absl::StatusOr<ferry::secrets::SealedBoxKey> ReadSecretsKeyFile(const std::string& path);

}  // namespace ferry::deployer::secrets
