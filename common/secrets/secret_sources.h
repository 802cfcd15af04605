#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ferry/v1/common.pb.h"

namespace ferry::secrets {

// Largest secret read from a file (tokens, passphrases, webhook secrets).
inline constexpr size_t kMaxSecretBytes = 64 * 1024;

// Where a SecretRef may point: a file in the secrets directory, an
// environment variable whose name starts with the prefix, or a field of a
// secret in the configured Vault, nothing else (a reference is chosen by
// whoever may register a repository, or write an application's manifests,
// and the value goes where they say). Shared by the repo-watcher (Git
// credentials) and the deployer (application secrets).
struct SecretSourceOptions {
  // The service these sources belong to, named in refusals ("the
  // repo-watcher was started without --secrets-dir").
  std::string service = "repo-watcher";
  // --secrets-dir: file references must resolve, after symlinks, to a
  // regular file beneath it. Empty: file references are refused.
  std::string secrets_dir;
  // --secret-env-prefix: environment references must start with it (and
  // name more than it). Empty: environment references are refused.
  std::string env_prefix = "FERRY_SECRET_";
  // --test-only-allow-http-token-to-loopback: an https_token may be sent
  // over plain http:// to 127.0.0.0/8, [::1] or localhost (tests with a
  // local Git HTTP server). Off: a token is never sent over http://.
  bool allow_http_token_to_loopback = false;
  // --vault-address and the rest (common/secrets/vault_flags.h): reads the
  // string `field` of the KV v2 secret at `path`. Empty: Vault references
  // are refused.
  std::function<absl::StatusOr<std::string>(const std::string& path, const std::string& field)> vault = nullptr;
};

// The configured secret sources. Immutable; thread-safe.
class SecretSources {
 public:
  // FAILED_PRECONDITION when secrets_dir is set but is not a directory.
  static absl::StatusOr<SecretSources> Create(SecretSourceOptions options);

  // Reads the secret `ref` points to, without a trailing newline.
  // INVALID_ARGUMENT naming `field` (and `field`.file / .env / .vault) and
  // why for a reference outside the sources, a missing file, variable or
  // Vault secret or field, one Vault refuses to show, a file that is not a
  // regular file or larger than kMaxSecretBytes. UNAVAILABLE naming `field`
  // when Vault could not be asked (down, sealed, timed out): retry later.
  // The secret is never in the message.
  absl::StatusOr<std::string> Read(const v1::SecretRef& ref, const std::string& field) const;

  // The canonical path of `path` (absolute, or relative to the secrets
  // directory) when it names a regular, readable file beneath the secrets
  // directory, reached without any symlink once resolved; INVALID_ARGUMENT
  // naming `field` otherwise. For files a library opens by path (SSH keys).
  absl::StatusOr<std::string> ResolveFile(const std::string& path, const std::string& field) const;

  bool allow_http_token_to_loopback() const { return options_.allow_http_token_to_loopback; }
  const std::string& secrets_dir() const { return dir_; }

 private:
  SecretSources(SecretSourceOptions options, std::string dir, std::string written_dir)
      : options_(std::move(options)), dir_(std::move(dir)), written_dir_(std::move(written_dir)) {}
  // Opens the canonical `path` beneath dir_ one component at a time with
  // O_NOFOLLOW, so no symlink swapped in after resolution is followed.
  absl::StatusOr<int> OpenBeneath(const std::string& path, const std::string& field) const;

  SecretSourceOptions options_;
  std::string dir_;          // canonical secrets directory; empty when none
  std::string written_dir_;  // the directory as configured, made absolute
};

}  // namespace ferry::secrets
