#pragma once

// Long-running programs the host target starts detached (Process objects),
// and how it finds, signals and stops them. Commands run to completion
// (validate, reload, exec probes) go through common/process instead.

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/deployer/host/workload_identity.h"

namespace ferry::deployer::host {

struct SpawnSpec {
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;  // Full environment of the child.
  std::string workdir;
  std::string log_path;  // stdout and stderr are appended here.
};

// Starts a long-running program in a session of its own (setsid), so it
// outlives the caller, with stdin from /dev/null and output appended to
// spec.log_path. Returns its pid. With `who` naming a uid, it runs as that
// uid and gid (no supplementary groups), changed in the child after fork,
// before exec; the log is opened by the caller. Thread-safe.
absl::StatusOr<pid_t> SpawnDetached(const SpawnSpec& spec, const WorkloadIdentity& who = {});

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
