#pragma once

// The one way Ferry's services run a tool to completion (helm, kubectl
// kustomize, ssh-keygen, validate and reload commands, exec probes).
// Long-running workloads are not run here: the deployer starts those
// detached (services/deployer/host/detached_process.h).

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ferry::process {

// PATH of MinimalEnvironment(), and where a bare program name is looked up
// when the given environment has no PATH.
inline constexpr char kDefaultCommandPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// PATH=kDefaultCommandPath, LANG=C.UTF-8 and HOME=`home` ("/" when empty):
// enough for most tools, and nothing of the service's own environment.
std::vector<std::string> MinimalEnvironment(const std::string& home = "");

struct ProcessOptions {
  // The child's whole environment, "KEY=VALUE" each. Nothing of the calling
  // process's environment is inherited (it may hold a database URL). A bare
  // argv[0] (no '/') is looked up in this environment's PATH (or
  // kDefaultCommandPath when it has none), never in the caller's.
  std::vector<std::string> env;
  // Working directory of the child; empty: the caller's.
  std::string working_dir;
  // Bytes the child reads on stdin; nullopt: /dev/null.
  std::optional<std::string> stdin_data;
  // After this the child's whole process group is killed (SIGKILL, no grace
  // period: the tools run here have nothing to clean up) and the result says
  // timed_out.
  absl::Duration timeout = absl::Seconds(60);
  // Bytes of stdout and stderr kept; the rest is read and dropped (so a child
  // that writes a lot never blocks on a full pipe) and the result says
  // *_truncated.
  size_t max_stdout_bytes = 1 << 20;
  size_t max_stderr_bytes = 64 << 10;
  // stderr goes to the stdout pipe (interleaved as written), bounded by
  // max_stdout_bytes; stderr_text stays empty.
  bool merge_stderr_into_stdout = false;
  // Kill the process group as soon as stdout passes max_stdout_bytes instead
  // of reading on (for callers that treat too much output as a failure).
  bool kill_at_stdout_limit = false;
};

struct ProcessResult {
  int exit_code = -1;    // the exit status when the child exited; -1 otherwise
  int term_signal = 0;   // the signal that ended the child, 0 when it exited
  bool timed_out = false;
  std::string stdout_text;
  std::string stderr_text;
  bool stdout_truncated = false;
  bool stderr_truncated = false;

  bool exited() const { return term_signal == 0 && exit_code >= 0; }
  // Exited 0 within the timeout.
  bool succeeded() const { return exited() && exit_code == 0 && !timed_out; }
};

// Runs argv with posix_spawn in a session (and so a process group) of its
// own, with the signal mask emptied and every signal at its default, stdin
// from options.stdin_data or /dev/null, and no descriptor of the caller but
// 0, 1 and 2 open. Waits for it (never longer than options.timeout). When the
// child has exited, whatever is left of its process group is killed and the
// output already written is collected.
//
// A non-zero exit, a signal or a timeout is reported in the result, not as
// an error. Errors: INVALID_ARGUMENT for an empty argv, NOT_FOUND when the
// program does not exist, PERMISSION_DENIED when it cannot be executed,
// INTERNAL when it cannot be started otherwise or when waiting for it fails
// (its exit status is then unknown; it is never reported as a success).
// Thread-safe; no exceptions.
absl::StatusOr<ProcessResult> RunProcess(const std::vector<std::string>& argv, const ProcessOptions& options);

}  // namespace ferry::process
