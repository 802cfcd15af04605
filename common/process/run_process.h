#pragma once

// The one way Ferry's services run a tool to completion (helm, kubectl
// kustomize, ssh-keygen, validate and reload commands, exec probes).
// Long-running workloads are not run here: the deployer starts those
// detached (services/deployer/host/detached_process.h).
//
// Sandboxed runs (ProcessOptions::sandbox: rlimits, no network) cannot use
// posix_spawn, which can neither set rlimits nor unshare namespaces. They
// fork, and the child makes only async-signal-safe calls before execve
// (sigaction, sigprocmask, setsid, open, dup2, close_range, chdir,
// setrlimit, unshare, write, _exit), everything it needs (argv, envp, limits)
// having been prepared before the fork; a step that fails writes its stage
// and errno to a close-on-exec pipe, so the caller gets the same errors as
// from posix_spawn. Chosen over a small exec wrapper binary: nothing more to
// build, install and locate at run time, and one place for the code. Runs
// without a sandbox keep posix_spawn (cheaper in a large process).

#include <cstddef>
#include <cstdint>
#include <sys/types.h>

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

// Kernel-enforced bounds on a child (setrlimit in the child before exec);
// 0 leaves a limit as inherited. Each `*_flag` names what sets the limit
// (e.g. "--render-memory-limit-mb") for ProcessResult::limit_exceeded.
struct ResourceLimits {
  // RLIMIT_AS: allocations past it fail (the program then reports running
  // out of memory and exits). Virtual memory: Go programs (helm, kubectl)
  // need some 300 MiB of it before doing anything.
  uint64_t address_space_bytes = 0;
  std::string address_space_flag;
  // RLIMIT_CPU: SIGXCPU at the limit, SIGKILL a second of CPU later.
  uint64_t cpu_seconds = 0;
  std::string cpu_flag;
  // RLIMIT_FSIZE: the largest file the child may write (SIGXFSZ past it).
  uint64_t file_size_bytes = 0;
  std::string file_size_flag;
  // RLIMIT_NOFILE: descriptors open at once.
  uint64_t open_files = 0;
  // RLIMIT_NPROC: counts every process and thread of the user, not of the
  // child alone, and does not bind root; set it only for a dedicated user.
  uint64_t processes = 0;
};

struct Sandbox {
  ResourceLimits limits;
  // Run the child in a network namespace of its own (no interface but a
  // loopback that is down: no connection anywhere, not even to this host),
  // where the kernel allows it (NetworkIsolationAvailable); otherwise the
  // child runs with the network and NetworkIsolationAvailable's reason is
  // logged once.
  bool isolate_network = false;
  // Run the child as this uid and gid, with no supplementary groups
  // (setgroups, setresgid, setresuid after fork, before exec; the caller must
  // be allowed to). Unset: the caller's.
  std::optional<uid_t> uid;
  gid_t gid = 0;
};

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
  // Limits and isolation of the child (see Sandbox); none when unset.
  std::optional<Sandbox> sandbox;
};

struct ProcessResult {
  int exit_code = -1;    // the exit status when the child exited; -1 otherwise
  int term_signal = 0;   // the signal that ended the child, 0 when it exited
  bool timed_out = false;
  std::string stdout_text;
  std::string stderr_text;
  bool stdout_truncated = false;
  bool stderr_truncated = false;
  // When the child ended on a limit of options.sandbox: which, its value and
  // what sets it, e.g. "the CPU limit of 60 s (--render-cpu-seconds)". The
  // memory limit is recognised by the child's own report of running out of
  // memory (it exits; the kernel sends no signal for RLIMIT_AS).
  std::string limit_exceeded;
  // Whether the child ran in a network namespace of its own.
  bool network_isolated = false;
  // CPU time the child (and its waited-for children) used.
  absl::Duration cpu_time;

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

// Whether children can be given a network namespace of their own here:
// OK (as root or with CAP_SYS_ADMIN a new network namespace; otherwise a new
// user namespace with a network namespace in it), or why not (containers
// often forbid both). Probed once, by a forked child; thread-safe.
absl::Status NetworkIsolationAvailable();

}  // namespace ferry::process
