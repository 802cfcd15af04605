// The deployer's protection of itself against the workloads it starts, which
// run as its uid: marked non-dumpable, it cannot have its environment (the
// database URL) read through /proc nor be ptraced by them.

#include "services/deployer/host/self_protection.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace ferry::deployer::host {
namespace {

// What a workload of the deployer's own uid gets when it tries the
// deployer's secrets.
enum Outcome { kRead = 0, kRefused = 1, kBroken = 2 };

struct Attempt {
  int environ_read;  // Outcome of open+read of /proc/<deployer>/environ.
  int ptrace_attach;  // Outcome of PTRACE_ATTACH.
};

// Forks a stand-in deployer (hardened or not) and a workload of the same
// uid. Under root both first become an unprivileged uid (root reads any
// process's /proc regardless), so the check is the one a same-uid workload
// of an unprivileged deployer meets.
Attempt Try(bool hardened) {
  int result_pipe[2];
  if (pipe(result_pipe) != 0) return {kBroken, kBroken};
  pid_t outer = fork();
  if (outer == 0) {
    close(result_pipe[0]);
    if (getuid() == 0) {
      if (setgroups(0, nullptr) != 0 || setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) {
        _exit(3);
      }
    }
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);  // A uid change cleared it; an ordinary process is dumpable.
    int ready[2];
    if (pipe(ready) != 0) _exit(3);
    pid_t deployer = fork();
    if (deployer == 0) {
      close(ready[0]);
      if (hardened && !MakeNonDumpable().ok()) _exit(3);
      if (hardened && IsDumpable()) _exit(3);
      (void)!write(ready[1], "r", 1);
      pause();
      _exit(0);
    }
    close(ready[1]);
    char c;
    if (read(ready[0], &c, 1) != 1) _exit(3);
    // The workload: same uid, not the deployer's child (as a detached process).
    Attempt a{kBroken, kBroken};
    int fd = open(("/proc/" + std::to_string(deployer) + "/environ").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      a.environ_read = errno == EACCES || errno == EPERM ? kRefused : kBroken;
    } else {
      char buf[64];
      ssize_t n = read(fd, buf, sizeof buf);
      a.environ_read = n >= 0 ? kRead : (errno == EACCES || errno == EPERM ? kRefused : kBroken);
      close(fd);
    }
    if (ptrace(PTRACE_ATTACH, deployer, nullptr, nullptr) == 0) {
      a.ptrace_attach = kRead;
      int st;
      waitpid(deployer, &st, 0);
      ptrace(PTRACE_DETACH, deployer, nullptr, nullptr);
    } else {
      a.ptrace_attach = errno == EPERM || errno == EACCES ? kRefused : kBroken;
    }
    kill(deployer, SIGKILL);
    waitpid(deployer, nullptr, 0);
    (void)!write(result_pipe[1], &a, sizeof a);
    _exit(0);
  }
  close(result_pipe[1]);
  Attempt a{kBroken, kBroken};
  if (read(result_pipe[0], &a, sizeof a) != sizeof a) a = {kBroken, kBroken};
  close(result_pipe[0]);
  int status = 0;
  waitpid(outer, &status, 0);
  return a;
}

TEST(SelfProtectionTest, MakeNonDumpableClearsTheFlag) {
  pid_t child = fork();
  if (child == 0) _exit(MakeNonDumpable().ok() && !IsDumpable() ? 0 : 1);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(SelfProtectionTest, AWorkloadOfTheDeployersUidCannotReadItsEnvironmentOrTraceIt) {
  // Without the protection the same workload reads and traces it: the check
  // below is not refused for some other reason (yama ptrace_scope aside).
  Attempt open_door = Try(false);
  EXPECT_EQ(open_door.environ_read, kRead);
  Attempt hardened = Try(true);
  EXPECT_EQ(hardened.environ_read, kRefused);
  EXPECT_EQ(hardened.ptrace_attach, kRefused);
}

}  // namespace
}  // namespace ferry::deployer::host
