#pragma once

// The ferry command's exit codes, for scripts (docs/cli.md):
//   0 ok; 1 failed; 2 usage (bad flags or arguments); 3 waited, and the
//   deployment failed or was rolled back; 4 waited, and the wait timed out;
//   130 interrupted (Ctrl-C stops the waiting, never the deployment).
// A command returns an absl::Status; WaitFailed/WaitTimedOut mark the ones
// that map to 3 and 4, UsageError the ones that map to 2.

#include <string>

#include "absl/status/status.h"

namespace ferry::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitWaitFailed = 3;
inline constexpr int kExitWaitTimedOut = 4;
inline constexpr int kExitInterrupted = 130;

absl::Status UsageError(const std::string& message);
absl::Status WaitFailed(const std::string& message);
absl::Status WaitTimedOut(const std::string& message);
absl::Status Interrupted(const std::string& message);

// The exit code of a command's result.
int ExitCodeOf(const absl::Status& status);

}  // namespace ferry::cli
