#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"

namespace ferry::deployer::secrets {

// Where an application secret comes from, as a manifest names it
// (`valueFrom.secretRef` of a Process env entry, `contentFrom.secretRef` of a
// ConfigFile). Exactly one source:
//   {encryptedFile: "db.sealed"}  a file of the application's Git folder
//                                 (relative to the manifest), sealed to the
//                                 deployer's key (`ferry-secrets seal`) or
//                                 encrypted with age to its age identity
//   {file: "db-password"}         a file in the deployer's --secrets-dir
//   {env: "FERRY_SECRET_DB"}      a deployer variable with --secret-env-prefix
//   {vault: {path: "secret/data/app", field: "password"}}
//                                 a field of a Vault KV v2 secret
// The deployer adds, when it prepares a deployment, what it resolved:
// `ciphertext` (encryptedFile: the file's bytes, base64; the recorded object
// can be applied again without Git), `sourceDigest` (encryptedFile: sha256 of
// those bytes; the planner adds it too, so a changed file shows in a plan)
// and `valueDigest` (a keyed digest of the value, never the value). Nothing
// else is recorded: the value itself exists only in the workload.
struct SecretRef {
  enum class Source { kEncryptedFile, kFile, kEnv, kVault };
  Source source = Source::kFile;
  std::string name;         // encryptedFile / file path, env variable, or Vault path.
  std::string vault_field;  // kVault: the field of the secret's data.
  std::string ciphertext;   // kEncryptedFile: the file's bytes, once read.
  std::string source_digest;  // "sha256:<hex>" of ciphertext.
  std::string value_digest;   // "hmac-sha256:<hex>" of the value, once resolved.
  std::string field;  // Where the reference is, for messages ("spec.env[0].valueFrom.secretRef").
};

// Parses a secretRef object found at `field`. INVALID_ARGUMENT "<field>...:
// why" for anything but exactly one known source with a non-empty string.
absl::StatusOr<SecretRef> ParseSecretRef(const nlohmann::json& ref, const std::string& field);

// The reference as recorded: its source plus ciphertext, sourceDigest and
// valueDigest when set.
nlohmann::json SecretRefJson(const SecretRef& ref);

// "sha256:<hex>" of an encrypted file's bytes.
std::string SourceDigest(const std::string& ciphertext);

}  // namespace ferry::deployer::secrets
