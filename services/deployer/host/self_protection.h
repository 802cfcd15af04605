#pragma once

#include "absl/status/status.h"

namespace ferry::deployer::host {

// Marks the calling process non-dumpable (prctl PR_SET_DUMPABLE 0): its
// /proc/<pid>/ files (environ with the database URL, mem, fd) become owned by
// root and it can no longer be ptraced by processes of the same uid, such as
// the workloads the host target starts. The deployer calls it first thing in
// main. Children start dumpable again after exec.
absl::Status MakeNonDumpable();

// True when the calling process is dumpable (prctl PR_GET_DUMPABLE).
bool IsDumpable();

}  // namespace ferry::deployer::host
