#include "cli/exit_codes.h"

#include "absl/strings/cord.h"

namespace ferry::cli {
namespace {

constexpr char kPayload[] = "ferry.dev/cli-exit-code";

absl::Status With(absl::Status s, int code) {
  s.SetPayload(kPayload, absl::Cord(std::to_string(code)));
  return s;
}

}  // namespace

absl::Status UsageError(const std::string& message) { return With(absl::InvalidArgumentError(message), kExitUsage); }
absl::Status WaitFailed(const std::string& message) { return With(absl::AbortedError(message), kExitWaitFailed); }
absl::Status WaitTimedOut(const std::string& message) {
  return With(absl::DeadlineExceededError(message), kExitWaitTimedOut);
}
absl::Status Interrupted(const std::string& message) { return With(absl::CancelledError(message), kExitInterrupted); }

int ExitCodeOf(const absl::Status& status) {
  if (status.ok()) return kExitOk;
  auto payload = status.GetPayload(kPayload);
  if (payload.has_value()) {
    std::string s(*payload);
    if (s == "2") return kExitUsage;
    if (s == "3") return kExitWaitFailed;
    if (s == "4") return kExitWaitTimedOut;
    if (s == "130") return kExitInterrupted;
  }
  return kExitFailed;
}

}  // namespace ferry::cli
