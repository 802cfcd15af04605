#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/git/git_repository.h"
#include "ferry/v1/repo_watcher.pb.h"
#include "common/secrets/secret_sources.h"

namespace ferry::repo_watcher {

// Resolves a repository's credentials reference into secrets for one Git
// operation. Anonymous when none are configured. Checked again at each use,
// since the stored spec may predate the sources configured now:
// FAILED_PRECONDITION, before anything is sent, when the URL's origin is not
// the one the credentials were given for (credentials.origin; a spec stored
// before origins were recorded is bound to its URL as stored), when a token
// would go over plain http://, or when a reference is outside `sources` or
// unreadable. The secret is never in the message.
absl::StatusOr<git::Credentials> ResolveCredentials(const v1::Repository& repo, const secrets::SecretSources& sources);

}  // namespace ferry::repo_watcher
