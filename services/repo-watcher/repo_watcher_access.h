#pragma once

#include "common/auth/access_control.h"

namespace ferry::repo_watcher {

// The access rules of the RepoWatcher service's RPCs (docs/security.md has
// the table). Repositories belong to no application or environment: changing
// them takes an unrestricted admin.
void AddRepoWatcherRules(auth::AccessControl& access);

}  // namespace ferry::repo_watcher
