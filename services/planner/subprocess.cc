#include "services/planner/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace ferry::planner {
namespace {
constexpr size_t kMaxStderr = 64 << 10;

void KillGroupAndReap(pid_t pid) {
  ::kill(-pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}
}  // namespace

absl::StatusOr<SubprocessResult> RunSubprocess(const std::vector<std::string>& argv, const SubprocessOptions& options) {
  if (argv.empty()) return absl::InvalidArgumentError("subprocess: empty argv");
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : options.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  if (pid == 0) {
    ::setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    // Nothing of the parent (database and gRPC sockets) leaks into the tool.
    ::syscall(SYS_close_range, 3u, ~0u, 0u);
    if (!options.working_dir.empty() && ::chdir(options.working_dir.c_str()) != 0) _exit(126);
    ::execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  ::setpgid(pid, pid);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);

  SubprocessResult result;
  absl::Time deadline = absl::Now() + options.timeout;
  bool out_open = true, err_open = true;
  absl::Status failure;
  char buf[65536];
  while (out_open || err_open) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      failure = absl::DeadlineExceededError(
          absl::StrCat(argv[0], " did not finish within ", absl::FormatDuration(options.timeout), " and was killed"));
      break;
    }
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    int n = ::poll(fds, 2, static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 1000)));
    if (n < 0 && errno != EINTR) {
      failure = absl::InternalError(absl::StrCat("poll: ", std::strerror(errno)));
      break;
    }
    for (int i = 0; i < 2; ++i) {
      bool& open = i == 0 ? out_open : err_open;
      if (!open || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t r = ::read(fds[i].fd, buf, sizeof buf);
      if (r <= 0) {
        if (r < 0 && errno == EINTR) continue;
        open = false;
        continue;
      }
      if (i == 0) {
        result.stdout_text.append(buf, static_cast<size_t>(r));
        if (result.stdout_text.size() > options.max_output_bytes) {
          failure = absl::ResourceExhaustedError(
              absl::StrCat(argv[0], " wrote more than ", options.max_output_bytes, " bytes and was killed"));
        }
      } else if (result.stderr_text.size() < kMaxStderr) {
        result.stderr_text.append(buf, std::min(static_cast<size_t>(r), kMaxStderr - result.stderr_text.size()));
      }
    }
    if (!failure.ok()) break;
  }
  ::close(out_pipe[0]);
  ::close(err_pipe[0]);
  if (!failure.ok()) {
    KillGroupAndReap(pid);
    return failure;
  }
  // Output closed; wait for the exit, still bounded by the deadline.
  int status = 0;
  while (true) {
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) return absl::InternalError(absl::StrCat("waitpid: ", std::strerror(errno)));
    if (absl::Now() > deadline) {
      KillGroupAndReap(pid);
      return absl::DeadlineExceededError(
          absl::StrCat(argv[0], " did not finish within ", absl::FormatDuration(options.timeout), " and was killed"));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  ::kill(-pid, SIGKILL);  // leftovers of the group, if any
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
    if (result.exit_code == 127 && result.stderr_text.empty()) {
      return absl::InternalError(absl::StrCat("cannot execute ", argv[0]));
    }
  } else {
    result.exit_code = -1;
  }
  return result;
}

}  // namespace ferry::planner
