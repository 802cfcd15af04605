#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ferry::secrets {

// Reading Vault's JSON answers. Every message names the secret by `where`
// (mount and path) and the field, never a value.

// The string `field` of a KV v2 read answer
// ({"data": {"data": {...}, "metadata": {...}}}). NOT_FOUND when the latest
// version has no data (deleted or destroyed) or no such field;
// FAILED_PRECONDITION when the field is not a string; INTERNAL when the
// answer is not a KV v2 read answer (a KV v1 mount, another API).
absl::StatusOr<std::string> KvV2Field(const std::string& body, const std::string& where, const std::string& field);

// Whether a 404 answer of a KV v2 read is that of a deleted or destroyed
// latest version (its metadata, data null) rather than of no secret at all.
bool IsDeletedVersion(const std::string& body);

// A successful login ({"auth": {"client_token", "lease_duration", ...}}).
struct VaultLogin {
  std::string token;
  absl::Duration lease = absl::ZeroDuration();  // 0: the token does not expire
  bool renewable = false;
};

// INTERNAL when `body` holds no auth.client_token.
absl::StatusOr<VaultLogin> ParseLogin(const std::string& body);

// The messages of a Vault error answer ({"errors": ["..."]}), joined with
// "; ", at most 300 bytes, invalid UTF-8 shown as \xNN; "" when there are
// none. Vault's messages name paths and causes, not secret values.
std::string VaultErrors(const std::string& body);

}  // namespace ferry::secrets
