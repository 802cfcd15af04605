#include "common/process/run_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/logging/logger.h"
#include "common/process/spawn_parts.h"

namespace ferry::process {
namespace {

std::string Errno(int err) { return std::strerror(err); }

// A descriptor closed on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void Reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// argv[0] itself when it holds a '/', else the first executable regular file
// of that name in the child's PATH.
absl::StatusOr<std::string> ResolveProgram(const std::string& name, const std::vector<std::string>& env) {
  if (name.empty()) return absl::InvalidArgumentError("empty program name");
  if (name.find('/') != std::string::npos) return name;
  std::string path = kDefaultCommandPath;
  for (const std::string& e : env) {
    if (absl::StartsWith(e, "PATH=")) path = e.substr(5);
  }
  for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
    std::string candidate = absl::StrCat(dir, "/", name);
    struct stat st;
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return absl::NotFoundError(absl::StrCat("cannot start ", name, ": not found in PATH=", path));
}

absl::Status SpawnError(const std::string& program, int err) {
  std::string msg = absl::StrCat("cannot start ", program, ": ", Errno(err));
  if (err == ENOENT) return absl::NotFoundError(msg);
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(msg);
  return absl::InternalError(msg);
}

// The child's stdin: an anonymous in-memory file holding `data`.
absl::StatusOr<int> StdinFile(const std::string& data) {
  int fd = ::memfd_create("ferry-stdin", MFD_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat("memfd_create: ", Errno(errno)));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      ::close(fd);
      return absl::InternalError(absl::StrCat("writing stdin: ", Errno(err)));
    }
    off += static_cast<size_t>(n);
  }
  if (::lseek(fd, 0, SEEK_SET) != 0) {
    int err = errno;
    ::close(fd);
    return absl::InternalError(absl::StrCat("lseek: ", Errno(err)));
  }
  return fd;
}

// One output pipe being read.
struct Stream {
  Fd fd;
  std::string* text = nullptr;
  bool* truncated = nullptr;
  size_t limit = 0;

  // Reads what is there now. False at EOF or on a read error (the stream is
  // then closed).
  bool Drain() {
    char buf[65536];
    while (fd.valid()) {
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      if (n <= 0) {
        fd.Reset();
        return false;
      }
      size_t room = limit - std::min(limit, text->size());
      size_t keep = std::min(room, static_cast<size_t>(n));
      text->append(buf, keep);
      if (keep < static_cast<size_t>(n)) *truncated = true;
    }
    return false;
  }
};


// --- Sandboxed start: fork, then async-signal-safe calls only in the child.

// Where a sandboxed child failed before execve (written to the error pipe).
enum ChildStage : int {
  kStageSetsid = 1,
  kStageStdin,
  kStageDup,
  kStageChdir,
  kStageRlimit,
  kStageUnshare,
  kStageIdentity,
  kStageExec,
};

const char* StageName(int stage) {
  switch (stage) {
    case kStageSetsid: return "setsid";
    case kStageStdin: return "opening /dev/null for stdin";
    case kStageDup: return "dup2";
    case kStageChdir: return "changing to the working directory";
    case kStageRlimit: return "setrlimit";
    case kStageUnshare: return "unshare (network namespace)";
    case kStageIdentity: return "changing to the workload's uid and gid";
    default: return "execve";
  }
}

struct ChildPlan {
  const char* program = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* working_dir = nullptr;  // null: the caller's
  int stdin_fd = -1;                  // -1: /dev/null
  int stdout_fd = -1;
  int stderr_fd = -1;
  int error_fd = -1;  // close-on-exec; ChildStage and errno on failure
  struct Limit {
    int resource;
    rlimit value;
  };
  Limit limits[5];
  int n_limits = 0;
  bool unshare_network = false;
  bool set_identity = false;
  uid_t uid = 0;
  gid_t gid = 0;
};

[[noreturn]] void ChildFail(int error_fd, int stage, int err) {
  int msg[2] = {stage, err};
  ssize_t ignored = ::write(error_fd, msg, sizeof msg);
  (void)ignored;
  ::_exit(127);
}

// Moves `fd` to `target` (a dup2 that also clears close-on-exec when the
// two are the same).
bool MoveFd(int fd, int target) {
  if (fd == target) return ::fcntl(fd, F_SETFD, 0) == 0;
  return ::dup2(fd, target) == target;
}

// Unshares the network namespace: a new one when allowed, else a new user
// namespace with one in it (what an unprivileged process may do).
int UnshareNetwork() {
  if (::unshare(CLONE_NEWNET) == 0) return 0;
  if (::unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0) return 0;
  return errno;
}

// The child after fork: async-signal-safe calls only.
[[noreturn]] void RunChild(const ChildPlan& plan) {
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);  // EINVAL for reserved ones
  }
  sigset_t empty;
  sigemptyset(&empty);
  ::sigprocmask(SIG_SETMASK, &empty, nullptr);
  if (::setsid() < 0) ChildFail(plan.error_fd, kStageSetsid, errno);
  int in = plan.stdin_fd;
  if (in < 0) {
    in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (in < 0) ChildFail(plan.error_fd, kStageStdin, errno);
  }
  if (!MoveFd(in, 0) || !MoveFd(plan.stdout_fd, 1) || !MoveFd(plan.stderr_fd, 2))
    ChildFail(plan.error_fd, kStageDup, errno);
  // Nothing else of the caller reaches the child (the error pipe closes at
  // exec). Without close_range (kernels before 5.9) every descriptor is
  // closed one by one.
  const int err_fd = plan.error_fd;
  if (err_fd > 3 && ::syscall(SYS_close_range, 3u, static_cast<unsigned>(err_fd - 1), 0u) != 0) {
    for (int fd = 3; fd < err_fd; ++fd) ::close(fd);
  }
  if (::syscall(SYS_close_range, static_cast<unsigned>(err_fd + 1), ~0u, 0u) != 0) {
    rlimit nofile;
    int top = ::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < 65536 ? static_cast<int>(nofile.rlim_cur)
                                                                                    : 65536;
    for (int fd = err_fd + 1; fd < top; ++fd) ::close(fd);
  }
  if (plan.working_dir != nullptr && ::chdir(plan.working_dir) != 0) ChildFail(err_fd, kStageChdir, errno);
  for (int i = 0; i < plan.n_limits; ++i) {
    if (::setrlimit(plan.limits[i].resource, &plan.limits[i].value) != 0) ChildFail(err_fd, kStageRlimit, errno);
  }
  if (plan.unshare_network) {
    int err = UnshareNetwork();
    if (err != 0) ChildFail(err_fd, kStageUnshare, err);
  }
  // Raw system calls: the forked child has one thread, and glibc's wrappers
  // would signal the parent's other (absent) threads.
  if (plan.set_identity &&
      (::syscall(SYS_setgroups, 0, nullptr) != 0 || ::syscall(SYS_setresgid, plan.gid, plan.gid, plan.gid) != 0 ||
       ::syscall(SYS_setresuid, plan.uid, plan.uid, plan.uid) != 0)) {
    ChildFail(err_fd, kStageIdentity, errno);
  }
  ::execve(plan.program, plan.argv, plan.envp);
  ChildFail(err_fd, kStageExec, errno);
}

// Forks and starts the child of `plan`; its pid, or why it did not start.
absl::StatusOr<pid_t> ForkChild(ChildPlan plan, const std::string& name, const std::string& working_dir) {
  int error_pipe[2];
  if (::pipe2(error_pipe, O_CLOEXEC) != 0) return absl::InternalError(absl::StrCat("pipe: ", Errno(errno)));
  Fd error_read(error_pipe[0]), error_write(error_pipe[1]);
  plan.error_fd = error_write.get();
  pid_t pid = ::fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("cannot start ", name, ": fork: ", Errno(errno)));
  if (pid == 0) RunChild(plan);
  error_write.Reset();
  int msg[2] = {0, 0};
  size_t got = 0;
  while (got < sizeof msg) {
    ssize_t n = ::read(error_read.get(), reinterpret_cast<char*>(msg) + got, sizeof msg - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  if (got == 0) return pid;  // exec'd: the pipe closed
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const int stage = msg[0], err = msg[1];
  if (stage == kStageExec) return SpawnError(name, err);
  if (stage == kStageChdir && err == ENOENT)
    return absl::NotFoundError(absl::StrCat("cannot start ", name, ": working directory ", working_dir,
                                            " does not exist"));
  return absl::InternalError(absl::StrCat("cannot start ", name, ": ", StageName(stage), ": ", Errno(err)));
}

// Whether the child's output says it ran out of memory (what a program does
// when RLIMIT_AS refuses an allocation: Go "runtime: out of memory", C
// "Cannot allocate memory", C++ "bad_alloc", Python "MemoryError").
bool ReportsOutOfMemory(const std::string& text) {
  std::string lower = absl::AsciiStrToLower(text.size() > (1 << 20) ? text.substr(text.size() - (1 << 20)) : text);
  for (const char* needle : {"out of memory", "cannot allocate memory", "bad_alloc", "memoryerror",
                             "memory exhausted", "failed to reserve", "cannot allocate"}) {
    if (lower.find(needle) != std::string::npos) return true;
  }
  return false;
}

std::string FlagSuffix(const std::string& flag) { return flag.empty() ? "" : absl::StrCat(" (", flag, ")"); }

// Which limit of `limits` the finished child ran into, if any.
std::string LimitExceeded(const ResourceLimits& limits, const ProcessResult& r) {
  if (limits.cpu_seconds > 0 &&
      (r.term_signal == SIGXCPU ||
       (r.term_signal == SIGKILL && !r.timed_out && r.cpu_time >= absl::Seconds(limits.cpu_seconds)))) {
    return absl::StrCat("the CPU limit of ", limits.cpu_seconds, " s", FlagSuffix(limits.cpu_flag));
  }
  if (limits.file_size_bytes > 0 && r.term_signal == SIGXFSZ) {
    return absl::StrCat("the file size limit of ", limits.file_size_bytes >> 20, " MiB", FlagSuffix(limits.file_size_flag));
  }
  if (limits.address_space_bytes > 0 && !r.succeeded() && !r.timed_out &&
      (ReportsOutOfMemory(r.stderr_text) || ReportsOutOfMemory(r.stdout_text))) {
    return absl::StrCat("the memory limit of ", limits.address_space_bytes >> 20, " MiB",
                        FlagSuffix(limits.address_space_flag));
  }
  return "";
}

}  // namespace

absl::Status NetworkIsolationAvailable() {
  static const absl::Status* available = [] {
    pid_t pid = ::fork();
    if (pid < 0) return new absl::Status(absl::InternalError(absl::StrCat("fork: ", Errno(errno))));
    if (pid == 0) ::_exit(UnshareNetwork() == 0 ? 0 : 1);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return new absl::Status();
    return new absl::Status(absl::FailedPreconditionError(
        "the kernel refuses a new network namespace (unshare CLONE_NEWNET, and CLONE_NEWUSER|CLONE_NEWNET, "
        "are not permitted: no CAP_SYS_ADMIN, and user namespaces disabled or filtered, as in many containers)"));
  }();
  return *available;
}

std::vector<std::string> MinimalEnvironment(const std::string& home) {
  return {absl::StrCat("PATH=", kDefaultCommandPath), "LANG=C.UTF-8", absl::StrCat("HOME=", home.empty() ? "/" : home)};
}

absl::StatusOr<ProcessResult> RunProcess(const std::vector<std::string>& argv, const ProcessOptions& options) {
  if (argv.empty()) return absl::InvalidArgumentError("empty command");
  absl::StatusOr<std::string> program = ResolveProgram(argv[0], options.env);
  if (!program.ok()) return program.status();

  Fd stdin_fd;
  if (options.stdin_data.has_value()) {
    absl::StatusOr<int> fd = StdinFile(*options.stdin_data);
    if (!fd.ok()) return fd.status();
    stdin_fd.Reset(*fd);
  }
  int out_pipe[2], err_pipe[2] = {-1, -1};
  if (::pipe2(out_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return absl::InternalError(absl::StrCat("pipe: ", Errno(errno)));
  Fd out_read(out_pipe[0]), out_write(out_pipe[1]);
  Fd err_read, err_write;
  if (!options.merge_stderr_into_stdout) {
    if (::pipe2(err_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return absl::InternalError(absl::StrCat("pipe: ", Errno(errno)));
    err_read.Reset(err_pipe[0]);
    err_write.Reset(err_pipe[1]);
  }
  // The child's ends block, as a program expects of its stdout and stderr
  // (O_NONBLOCK belongs to the open file, so it is cleared on that end).
  ::fcntl(out_write.get(), F_SETFL, 0);
  if (err_write.valid()) ::fcntl(err_write.get(), F_SETFL, 0);

  std::vector<char*> args = CStrings(argv);
  std::vector<char*> envp = CStrings(options.env);
  pid_t pid = 0;
  ProcessResult result;
  if (options.sandbox.has_value()) {
    const ResourceLimits& limits = options.sandbox->limits;
    ChildPlan plan;
    plan.program = program->c_str();
    plan.argv = args.data();
    plan.envp = envp.data();
    plan.working_dir = options.working_dir.empty() ? nullptr : options.working_dir.c_str();
    plan.stdin_fd = stdin_fd.valid() ? stdin_fd.get() : -1;
    plan.stdout_fd = out_write.get();
    plan.stderr_fd = err_write.valid() ? err_write.get() : out_write.get();
    auto add = [&](int resource, uint64_t soft, uint64_t hard) {
      if (soft == 0) return;
      plan.limits[plan.n_limits++] = {resource, rlimit{static_cast<rlim_t>(soft), static_cast<rlim_t>(hard)}};
    };
    add(RLIMIT_AS, limits.address_space_bytes, limits.address_space_bytes);
    // SIGXCPU at the soft limit; SIGKILL at the hard one a second later.
    add(RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds + 1);
    add(RLIMIT_FSIZE, limits.file_size_bytes, limits.file_size_bytes);
    add(RLIMIT_NOFILE, limits.open_files, limits.open_files);
    add(RLIMIT_NPROC, limits.processes, limits.processes);
    if (options.sandbox->isolate_network) {
      absl::Status available = NetworkIsolationAvailable();
      plan.unshare_network = available.ok();
      static std::once_flag logged;
      if (!available.ok()) {
        std::call_once(logged, [&] {
          logging::Warn("network isolation of tools is unavailable; they run with the network",
                        {{"reason", std::string(available.message())}});
        });
      }
    }
    if (options.sandbox->uid.has_value()) {
      plan.set_identity = true;
      plan.uid = *options.sandbox->uid;
      plan.gid = options.sandbox->gid;
    }
    absl::StatusOr<pid_t> forked = ForkChild(plan, argv[0], options.working_dir);
    out_write.Reset();
    err_write.Reset();
    stdin_fd.Reset();
    if (!forked.ok()) return forked.status();
    pid = *forked;
    result.network_isolated = plan.unshare_network;
  } else {
    SpawnFileActions fa;
    if (stdin_fd.valid()) {
      posix_spawn_file_actions_adddup2(&fa.fa, stdin_fd.get(), 0);
    } else {
      posix_spawn_file_actions_addopen(&fa.fa, 0, "/dev/null", O_RDONLY, 0);
    }
    posix_spawn_file_actions_adddup2(&fa.fa, out_write.get(), 1);
    posix_spawn_file_actions_adddup2(&fa.fa, err_write.valid() ? err_write.get() : out_write.get(), 2);
    // Nothing else of the caller (database and gRPC sockets, files of other
    // threads) reaches the child.
    posix_spawn_file_actions_addclosefrom_np(&fa.fa, 3);
    if (!options.working_dir.empty()) posix_spawn_file_actions_addchdir_np(&fa.fa, options.working_dir.c_str());
    SpawnAttributes attr(/*new_session=*/true);
    int rc = ::posix_spawn(&pid, program->c_str(), &fa.fa, &attr.attr, args.data(), envp.data());
    out_write.Reset();
    err_write.Reset();
    stdin_fd.Reset();
    if (rc != 0) {
      if (rc == ENOENT && !options.working_dir.empty() && ::access(options.working_dir.c_str(), F_OK) != 0) {
        return absl::NotFoundError(absl::StrCat("cannot start ", argv[0], ": working directory ", options.working_dir,
                                                " does not exist"));
      }
      return SpawnError(argv[0], rc);
    }
  }

  // The kernel says when the child exits through a pidfd; without one
  // (kernels before 5.3) the loop looks every 10 ms.
  Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));

  Stream streams[2];
  streams[0].fd.Reset(out_read.Release());
  streams[0].text = &result.stdout_text;
  streams[0].truncated = &result.stdout_truncated;
  streams[0].limit = options.max_stdout_bytes;
  streams[1].fd.Reset(err_read.Release());
  streams[1].text = &result.stderr_text;
  streams[1].truncated = &result.stderr_truncated;
  streams[1].limit = options.max_stderr_bytes;

  const absl::Time deadline = absl::Now() + options.timeout;
  absl::Status wait_error;
  while (true) {
    // Exited? (WNOWAIT: the child stays a zombie, so its pid, and with it
    // the process group id, cannot be reused before the group is killed.)
    siginfo_t info{};
    int w = ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      wait_error = absl::InternalError(absl::StrCat("waiting for ", argv[0], " (pid ", pid, ") failed: ", Errno(errno),
                                                    "; its exit status is unknown"));
      break;
    }
    if (info.si_pid == pid) break;
    if (options.kill_at_stdout_limit && result.stdout_truncated) break;
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      result.timed_out = true;
      break;
    }
    pollfd fds[3];
    int nfds = 0;
    for (Stream& s : streams) {
      if (s.fd.valid()) fds[nfds++] = {s.fd.get(), POLLIN, 0};
    }
    if (pidfd.valid()) fds[nfds++] = {pidfd.get(), POLLIN, 0};
    int64_t wait_ms = absl::ToInt64Milliseconds(left) + 1;
    if (!pidfd.valid()) wait_ms = std::min<int64_t>(wait_ms, 10);
    int n = ::poll(fds, static_cast<nfds_t>(nfds), static_cast<int>(std::min<int64_t>(wait_ms, 1000)));
    if (n < 0 && errno != EINTR) {
      wait_error = absl::InternalError(absl::StrCat("poll: ", Errno(errno)));
      break;
    }
    for (Stream& s : streams) s.Drain();
  }
  // Timed out, too much output, a failed wait, or leftovers of a child that
  // exited: the group goes.
  ::kill(-pid, SIGKILL);
  for (Stream& s : streams) s.Drain();
  // Reaped even after a failed poll, so that no zombie is left behind.
  int status = 0;
  struct rusage usage;
  std::memset(&usage, 0, sizeof usage);
  while (true) {
    pid_t r = ::wait4(pid, &status, 0, &usage);
    if (r == pid) break;
    if (r < 0 && errno == EINTR) continue;
    if (!wait_error.ok()) return wait_error;
    return absl::InternalError(absl::StrCat("waiting for ", argv[0], " (pid ", pid, ") failed: ",
                                            r < 0 ? Errno(errno) : "unexpected pid", "; its exit status is unknown"));
  }
  if (!wait_error.ok()) return wait_error;
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.term_signal = WTERMSIG(status);
  }
  result.cpu_time = absl::DurationFromTimeval(usage.ru_utime) + absl::DurationFromTimeval(usage.ru_stime);
  if (options.sandbox.has_value()) result.limit_exceeded = LimitExceeded(options.sandbox->limits, result);
  return result;
}

}  // namespace ferry::process
