#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ferry::deployer::host {

struct CommandOutcome {
  int exit_code = -1;  // -1 when killed by a signal or timed out.
  bool timed_out = false;
  std::string output;  // stdout and stderr, truncated to 64 KiB.
};

// PATH of the commands and processes the deployer starts.
inline constexpr char kCommandPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Runs `argv` (argv[0] an absolute path or looked up in PATH) to completion,
// killing its process group after `timeout`, in a minimal environment (PATH
// = kCommandPath, LANG=C.UTF-8, HOME = `workdir`), never the deployer's own.
// Signal mask and dispositions are reset for the child. INTERNAL if it
// cannot be started.
absl::StatusOr<CommandOutcome> RunCommand(const std::vector<std::string>& argv, absl::Duration timeout,
                                          const std::string& workdir = "");

struct SpawnSpec {
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;  // Full environment of the child.
  std::string workdir;
  std::string log_path;  // stdout and stderr are appended here.
};

// Starts a long-running program in a session of its own (setsid), so it
// outlives the caller, with stdin from /dev/null and output appended to
// spec.log_path. Returns its pid. Thread-safe.
absl::StatusOr<pid_t> SpawnDetached(const SpawnSpec& spec);

// Identity of a running process: its pid plus its start time (field 22 of
// /proc/<pid>/stat), so that a reused pid is never mistaken for it.
struct ProcessIdentity {
  pid_t pid = 0;
  uint64_t start_time = 0;
};

// Start time of `pid`, or 0 when it does not exist or is a zombie (reaping it
// when it is our child).
uint64_t ProcessStartTime(pid_t pid);

// True when `id` still names the same, live process.
bool IsAlive(const ProcessIdentity& id);

// Sends `signal` to the process group of `id` if (and only if) `id` is alive.
// Returns false when the process is gone.
bool SignalGroup(const ProcessIdentity& id, int signal);

// Sends `signal`, waits up to `timeout` for the process to exit, then sends
// SIGKILL to its group and waits for it to disappear.
void StopProcess(const ProcessIdentity& id, int signal, absl::Duration timeout);

// Signal number for a name such as "SIGTERM", "TERM" or "15";
// INVALID_ARGUMENT otherwise.
absl::StatusOr<int> ParseSignal(const std::string& name);

}  // namespace ferry::deployer::host
