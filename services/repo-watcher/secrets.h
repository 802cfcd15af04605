#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/git/git_repository.h"
#include "ferry/v1/repo_watcher.pb.h"

namespace ferry::repo_watcher {

// Reads the secret a SecretRef points to (file contents or environment
// variable), without a trailing newline. FAILED_PRECONDITION naming `field`
// when the file or variable is missing; the secret is never in the message.
absl::StatusOr<std::string> ReadSecret(const v1::SecretRef& ref, const std::string& field);

// Resolves a repository's credentials reference into secrets for one Git
// operation. Anonymous when none are configured.
absl::StatusOr<git::Credentials> ResolveCredentials(const v1::Repository& repo);

}  // namespace ferry::repo_watcher
