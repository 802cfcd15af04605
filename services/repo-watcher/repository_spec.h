#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ferry/v1/repo_watcher.pb.h"
#include "common/secrets/secret_sources.h"

namespace ferry::repo_watcher {

inline constexpr absl::Duration kDefaultPollInterval = absl::Seconds(60);
inline constexpr absl::Duration kMinPollInterval = absl::Seconds(1);
// Longest repository URL accepted (the URL is stored, logged and shown).
inline constexpr size_t kMaxUrlBytes = 2048;
// Longest ssh allowed_signers line accepted (an RSA-16384 key is ~3 KB).
inline constexpr size_t kMaxAllowedSignerBytes = 16384;

// Kind of a repository URL.
enum class UrlKind { kLocalPath, kFile, kHttps, kHttp, kSsh, kScp };

// Classifies `url`. INVALID_ARGUMENT naming `field` for an empty or malformed
// URL or an unknown scheme.
absl::StatusOr<UrlKind> ClassifyUrl(const std::string& url, const std::string& field = "repository.url");

// Checks a repository as submitted by a client and fills defaults (poll
// interval 60 s, branch "main" when nothing is tracked, mode NONE).
// INVALID_ARGUMENT names the first bad field: id, url (bad or unknown
// scheme), poll_interval (< 1 s), credentials (a reference outside
// `sources`, missing file, unset environment variable, kind not matching the
// URL, a token with an http:// URL), webhook_secret, branches/tag_patterns,
// signature_policy (no trusted keys for HEAD/ALL). Leaves
// credentials.origin as it is (the registry sets it).
absl::Status ValidateAndNormalize(v1::Repository& repo, const secrets::SecretSources& sources);

// The origin credentials for `url` are bound to: "scheme://host[:port]"
// (host lowercased, the scheme's default port omitted; scp-style
// user@host:path is "ssh://host"; local paths and file:// are "file://").
// Empty for an invalid URL.
std::string UrlOrigin(const std::string& url);

// Whether an origin's host is 127.0.0.0/8, [::1] or localhost.
bool IsLoopbackOrigin(const std::string& origin);

// OK unless `url` is http:// (a token would travel in clear text), allowed
// only to loopback with secrets::SecretSourceOptions::allow_http_token_to_loopback.
// INVALID_ARGUMENT naming `field`.
absl::Status CheckTokenTransport(const std::string& url, const secrets::SecretSources& sources, const std::string& field);

// Whether `id` is a lowercase DNS label of at most 63 characters.
bool IsValidId(const std::string& id);

// Whether the full ref `ref` is tracked by `repo` (branches match
// refs/heads/<pattern>, tag patterns refs/tags/<pattern>; glob syntax).
bool IsTrackedRef(const v1::Repository& repo, const std::string& ref);

absl::Duration PollInterval(const v1::Repository& repo);

}  // namespace ferry::repo_watcher
