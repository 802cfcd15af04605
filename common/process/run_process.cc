#include "common/process/run_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/process/spawn_parts.h"
#include "absl/time/clock.h"

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

}  // namespace

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
  std::vector<char*> args = CStrings(argv);
  std::vector<char*> envp = CStrings(options.env);
  pid_t pid = 0;
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

  // The kernel says when the child exits through a pidfd; without one
  // (kernels before 5.3) the loop looks every 10 ms.
  Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));

  ProcessResult result;
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
  while (true) {
    pid_t r = ::waitpid(pid, &status, 0);
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
  return result;
}

}  // namespace ferry::process
