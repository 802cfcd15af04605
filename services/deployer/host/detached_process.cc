#include "services/deployer/host/detached_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/process/spawn_parts.h"

namespace ferry::deployer::host {

namespace {

// The program posix_spawnp would run: `name` looked up in the caller's PATH.
std::string FindProgram(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path != nullptr ? path : "/usr/bin:/bin", ':')) {
    std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", name);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return name;
}

// SpawnDetached as another uid: fork, then async-signal-safe calls (raw
// system calls for the identity: the child has one thread) and exec.
absl::StatusOr<pid_t> SpawnAs(const SpawnSpec& spec, uid_t uid, gid_t gid) {
  int log_fd = open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (log_fd < 0) return absl::InternalError(absl::StrCat("open ", spec.log_path, ": ", strerror(errno)));
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int err_pipe[2];
  if (null_fd < 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    int err = errno;
    close(log_fd);
    if (null_fd >= 0) close(null_fd);
    return absl::InternalError(absl::StrCat("cannot start ", spec.argv[0], ": ", strerror(err)));
  }
  std::string program = FindProgram(spec.argv[0]);
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : spec.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> args = process::CStrings(spec.argv);
  std::vector<char*> envp = process::CStrings(env_strings);
  const char* workdir = spec.workdir.empty() ? nullptr : spec.workdir.c_str();
  pid_t pid = fork();
  if (pid == 0) {
    int err_fd = err_pipe[1];
    auto fail = [err_fd]() {
      int e = errno;
      (void)!write(err_fd, &e, sizeof e);
      _exit(127);
    };
    sigset_t empty;
    sigemptyset(&empty);
    sigprocmask(SIG_SETMASK, &empty, nullptr);
    if (setsid() < 0) fail();
    if (dup2(null_fd, 0) != 0 || dup2(log_fd, 1) != 1 || dup2(log_fd, 2) != 2) fail();
    if (workdir != nullptr && chdir(workdir) != 0) fail();
    if (syscall(SYS_setgroups, 0, nullptr) != 0 || syscall(SYS_setresgid, gid, gid, gid) != 0 ||
        syscall(SYS_setresuid, uid, uid, uid) != 0) {
      fail();
    }
    if (err_fd > 3) syscall(SYS_close_range, 3u, static_cast<unsigned>(err_fd - 1), 0u);
    syscall(SYS_close_range, static_cast<unsigned>(err_fd + 1), ~0u, 0u);
    execve(program.c_str(), args.data(), envp.data());
    fail();
  }
  int fork_err = errno;
  close(err_pipe[1]);
  close(log_fd);
  close(null_fd);
  if (pid < 0) {
    close(err_pipe[0]);
    return absl::InternalError(absl::StrCat("cannot start ", spec.argv[0], ": fork: ", strerror(fork_err)));
  }
  int child_err = 0;
  ssize_t n;
  do {
    n = read(err_pipe[0], &child_err, sizeof child_err);
  } while (n < 0 && errno == EINTR);
  close(err_pipe[0]);
  if (n > 0) {
    int status = 0;
    waitpid(pid, &status, 0);
    return absl::FailedPreconditionError(absl::StrCat("cannot start ", spec.argv[0], " as uid ", uid, ": ",
                                                      strerror(child_err)));
  }
  return pid;
}

}  // namespace

absl::StatusOr<pid_t> SpawnDetached(const SpawnSpec& spec, const WorkloadIdentity& who) {
  if (spec.argv.empty()) return absl::InvalidArgumentError("empty command");
  if (who.uid.has_value()) return SpawnAs(spec, *who.uid, who.gid);
  process::SpawnFileActions fa;
  posix_spawn_file_actions_addopen(&fa.fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa.fa, 1, spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0640);
  posix_spawn_file_actions_adddup2(&fa.fa, 1, 2);
  posix_spawn_file_actions_addclosefrom_np(&fa.fa, 3);
  if (!spec.workdir.empty()) posix_spawn_file_actions_addchdir_np(&fa.fa, spec.workdir.c_str());
  process::SpawnAttributes attr(/*new_session=*/true);
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : spec.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> args = process::CStrings(spec.argv);
  std::vector<char*> envp = process::CStrings(env_strings);
  pid_t pid = 0;
  // posix_spawnp searches the PATH of the caller, not of envp.
  int rc = posix_spawnp(&pid, args[0], &fa.fa, &attr.attr, args.data(), envp.data());
  if (rc != 0) return absl::FailedPreconditionError(absl::StrCat("cannot start ", spec.argv[0], ": ", strerror(rc)));
  return pid;
}

uint64_t ProcessStartTime(pid_t pid) {
  if (pid <= 0) return 0;
  int status = 0;
  waitpid(pid, &status, WNOHANG);  // Reap it if it is our exited child; ECHILD otherwise.
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  if (!in) return 0;
  std::stringstream ss;
  ss << in.rdbuf();
  std::string stat = ss.str();
  // The command name (field 2) is in parentheses and may contain spaces.
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::vector<std::string> fields = absl::StrSplit(stat.substr(close + 2), ' ');
  // fields[0] is field 3 (state); field 22 (starttime) is fields[19].
  if (fields.size() < 20) return 0;
  if (fields[0] == "Z" || fields[0] == "X") return 0;
  uint64_t start = 0;
  if (!absl::SimpleAtoi(fields[19], &start)) return 0;
  return start;
}

bool IsAlive(const ProcessIdentity& id) {
  return id.pid > 0 && id.start_time != 0 && ProcessStartTime(id.pid) == id.start_time;
}

bool SignalGroup(const ProcessIdentity& id, int signal) {
  if (!IsAlive(id)) return false;
  // The process leads its own session and group (SpawnDetached), so the
  // group id is its pid; fall back to the pid alone if the group is gone.
  if (kill(-id.pid, signal) != 0) kill(id.pid, signal);
  return true;
}

namespace {

// Waits until `id` exits or `deadline` passes; true if it exited. With a
// pidfd (opened before the caller signals, so it names the process whose
// start time IsAlive checked) the kernel wakes us at the exit; otherwise
// (no pidfd) it checks every 20 ms.
bool WaitExit(const ProcessIdentity& id, int pidfd, absl::Time deadline) {
  while (true) {
    if (!IsAlive(id)) return true;
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    if (pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      int n = poll(&p, 1, static_cast<int>(std::max<int64_t>(1, absl::ToInt64Milliseconds(left))));
      if (n < 0 && errno != EINTR) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    } else {
      std::this_thread::sleep_for(absl::ToChronoMilliseconds(std::min(left, absl::Milliseconds(20))));
    }
  }
}

}  // namespace

void StopProcess(const ProcessIdentity& id, int signal, absl::Duration timeout) {
  // pidfd_open(2) through syscall(2): glibc 2.36's wrapper is not declared for C++ here.
  int pidfd = id.pid > 0 ? static_cast<int>(syscall(SYS_pidfd_open, id.pid, 0)) : -1;
  struct Closer {
    int fd;
    ~Closer() {
      if (fd >= 0) close(fd);
    }
  } closer{pidfd};
  if (!SignalGroup(id, signal)) return;
  if (WaitExit(id, pidfd, absl::Now() + timeout)) return;
  SignalGroup(id, SIGKILL);
  WaitExit(id, pidfd, absl::Now() + absl::Seconds(5));
}

absl::StatusOr<int> ParseSignal(const std::string& name) {
  static const std::pair<const char*, int> kSignals[] = {
      {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
      {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"WINCH", SIGWINCH}};
  std::string n = absl::AsciiStrToUpper(name);
  if (absl::StartsWith(n, "SIG")) n = n.substr(3);
  for (const auto& [s, v] : kSignals) {
    if (n == s) return v;
  }
  int num = 0;
  if (absl::SimpleAtoi(n, &num) && num > 0 && num < 32) return num;
  return absl::InvalidArgumentError(absl::StrCat("unknown signal \"", name, "\""));
}

}  // namespace ferry::deployer::host
