#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "common/concurrency/mutex.h"
#include "common/secrets/vault_http.h"

namespace ferry::secrets {

// How the client logs in to Vault. Files are read again at each login, so a
// token rotated by Vault Agent or a new secret_id is picked up without a
// restart.
struct VaultAuth {
  enum class Kind { kToken, kAppRole };
  Kind kind = Kind::kToken;
  std::string token_file;        // kToken: the token, alone in the file
  std::string role_id_file;      // kAppRole
  std::string secret_id_file;    // kAppRole
  std::string approle_mount = "approle";  // kAppRole: POST /v1/auth/<mount>/login
};

struct VaultKvOptions {
  std::string kv_mount = "secret";  // the KV version 2 secrets engine
  VaultAuth auth;
  // A value read is served from memory this long (0: always asked again).
  // Errors are never kept.
  absl::Duration cache_ttl = absl::Seconds(30);
  // An AppRole token is replaced once this fraction of its lease has passed.
  double relogin_at_lease_fraction = 0.75;
};

// Reads fields of secrets from HashiCorp Vault's KV version 2 engine over its
// HTTP API (GET /v1/<kv_mount>/data/<path>), logged in with a token file or
// AppRole (POST /v1/auth/<approle_mount>/login with role_id and secret_id).
// A token is replaced before its lease ends and once after a 403. Values are
// never logged and never in a message. Thread-safe.
class VaultKvClient {
 public:
  VaultKvClient(std::unique_ptr<VaultHttp> http, VaultKvOptions options, const Clock* clock);

  // The string `field` of the latest version of the secret at `path` (below
  // the KV mount, "team/git" for secret/data/team/git). Errors name the
  // mount, path and field:
  //  INVALID_ARGUMENT  a path with an empty, "." or ".." segment, a leading
  //                    or trailing "/", a control character, or longer than
  //                    512 bytes; an empty field or one longer than 256 bytes
  //  NOT_FOUND         no secret at path (or its latest version is deleted),
  //                    or no such field
  //  PERMISSION_DENIED Vault refused the read (403) with a fresh login, or
  //                    refused the login itself (a wrong, expired or
  //                    revoked token, role_id or secret_id)
  //  FAILED_PRECONDITION the field is not a string; a credentials file
  //                    cannot be read or is empty
  //  UNAVAILABLE       no answer, Vault sealed or in standby (503), 429,
  //                    any 5xx
  //  RESOURCE_EXHAUSTED the answer is larger than the transport's limit
  //  INTERNAL          an answer that is not KV version 2 (e.g. a v1 mount)
  absl::StatusOr<std::string> Read(const std::string& path, const std::string& field);

  // The checks Read makes on `path` and `field` before any request.
  static absl::Status CheckPath(const std::string& path);
  static absl::Status CheckField(const std::string& field);

  // Counters, for tests and metrics.
  int64_t logins() const;
  int64_t requests() const;

 private:
  struct Token {
    std::string value;
    int64_t generation = 0;
  };
  struct Cached {
    std::string value;
    absl::Time expires;
  };

  // The current token, logging in first when there is none, it is past its
  // re-login time, or `stale_generation` is the current one (it was refused).
  absl::StatusOr<Token> CurrentToken(int64_t stale_generation);
  absl::StatusOr<std::string> LoginLocked(absl::Duration* lease) ABSL_EXCLUSIVE_LOCKS_REQUIRED(login_mu_);
  absl::StatusOr<VaultResponse> Send(const std::string& method, const std::string& api_path, const std::string& token,
                                     const std::string& body);

  const std::unique_ptr<VaultHttp> http_;
  const VaultKvOptions options_;
  const Clock* const clock_;

  Mutex login_mu_;  // held by the one thread logging in
  mutable Mutex mu_;
  std::string token_ ABSL_GUARDED_BY(mu_);
  int64_t generation_ ABSL_GUARDED_BY(mu_) = 0;  // of token_; 0: none yet
  absl::Time relogin_at_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  absl::Time expires_at_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();  // end of token_'s lease
  absl::flat_hash_map<std::string, Cached> cache_ ABSL_GUARDED_BY(mu_);
  int64_t logins_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t requests_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ferry::secrets
