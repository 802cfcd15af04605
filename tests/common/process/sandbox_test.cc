// RunProcess with a sandbox (ProcessOptions::sandbox): rlimits and a
// network namespace of the child's own, and the basics of RunProcess kept
// on that (forked) path.

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/process/run_process.h"

namespace ferry::process {
namespace {

ProcessOptions Sandboxed() {
  ProcessOptions o;
  o.env = MinimalEnvironment();
  o.timeout = absl::Seconds(30);
  o.sandbox = Sandbox();
  return o;
}

TEST(SandboxTest, AChildThatAllocatesPastTheMemoryLimitFailsNamingTheLimitAndItsFlag) {
  ProcessOptions o = Sandboxed();
  o.sandbox->limits.address_space_bytes = 256ull << 20;
  o.sandbox->limits.address_space_flag = "--render-memory-limit-mb";
  // 1 GiB in one piece: refused by RLIMIT_AS (Python reports MemoryError).
  absl::StatusOr<ProcessResult> r = RunProcess({"/usr/bin/python3", "-c", "b = bytearray(1 << 30)"}, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->succeeded());
  EXPECT_EQ(r->limit_exceeded, "the memory limit of 256 MiB (--render-memory-limit-mb)") << r->stderr_text;
  // The same allocation without the limit succeeds: the limit did it.
  ProcessOptions free = Sandboxed();
  absl::StatusOr<ProcessResult> unlimited = RunProcess({"/usr/bin/python3", "-c", "b = bytearray(1 << 30)"}, free);
  ASSERT_TRUE(unlimited.ok()) << unlimited.status();
  EXPECT_TRUE(unlimited->succeeded()) << unlimited->stderr_text;
  EXPECT_EQ(unlimited->limit_exceeded, "");
}

TEST(SandboxTest, ACpuSpinnerIsKilledAtTheCpuLimit) {
  ProcessOptions o = Sandboxed();
  o.sandbox->limits.cpu_seconds = 1;
  o.sandbox->limits.cpu_flag = "--render-cpu-seconds";
  const absl::Time start = absl::Now();
  absl::StatusOr<ProcessResult> r = RunProcess({"/bin/sh", "-c", "while :; do :; done"}, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(15)) << "not the 30 s timeout";
  EXPECT_FALSE(r->timed_out);
  EXPECT_TRUE(r->term_signal == SIGXCPU || r->term_signal == SIGKILL) << r->term_signal;
  // RLIMIT_CPU is checked on scheduler ticks, rusage counts precisely: near 1 s.
  EXPECT_GE(r->cpu_time, absl::Milliseconds(500));
  EXPECT_EQ(r->limit_exceeded, "the CPU limit of 1 s (--render-cpu-seconds)");
}

TEST(SandboxTest, AWriterPastTheFileSizeLimitIsStopped) {
  char dir[] = "/tmp/ferry-sandbox-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  ProcessOptions o = Sandboxed();
  o.working_dir = dir;
  o.sandbox->limits.file_size_bytes = 1 << 20;
  o.sandbox->limits.file_size_flag = "--render-file-size-mb";
  absl::StatusOr<ProcessResult> r = RunProcess({"/bin/sh", "-c", "head -c 4194304 /dev/zero > big"}, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->succeeded());
  std::string big = std::string(dir) + "/big";
  struct stat st;
  ASSERT_EQ(::stat(big.c_str(), &st), 0);
  EXPECT_LE(st.st_size, 1 << 20);
  ::unlink(big.c_str());
  ::rmdir(dir);
}

// A listener on a loopback port of this host; the port.
int Listen(int* fd) {
  *fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(*fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(*fd, 16) != 0) return 0;
  socklen_t len = sizeof addr;
  ::getsockname(*fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

TEST(SandboxTest, AnIsolatedChildCannotConnectToALoopbackPortOfTheHost) {
  absl::Status available = NetworkIsolationAvailable();
  if (!available.ok()) GTEST_SKIP() << "the kernel refuses network namespaces here: " << available.message();
  int listener = -1;
  int port = Listen(&listener);
  ASSERT_GT(port, 0);
  const std::string connect = absl::StrCat(
      "import socket\ntry:\n  socket.create_connection(('127.0.0.1', ", port,
      "), 2)\n  print('connected')\nexcept OSError as e:\n  print('refused', e)\n");
  ProcessOptions open = Sandboxed();
  absl::StatusOr<ProcessResult> control = RunProcess({"/usr/bin/python3", "-c", connect}, open);
  ASSERT_TRUE(control.ok()) << control.status();
  EXPECT_EQ(control->stdout_text, "connected\n") << "the test cannot tell isolation apart: " << control->stderr_text;
  EXPECT_FALSE(control->network_isolated);
  ProcessOptions isolated = Sandboxed();
  isolated.sandbox->isolate_network = true;
  absl::StatusOr<ProcessResult> r = RunProcess({"/usr/bin/python3", "-c", connect}, isolated);
  ::close(listener);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->network_isolated);
  EXPECT_TRUE(r->succeeded()) << r->stderr_text;
  EXPECT_EQ(r->stdout_text.rfind("refused", 0), 0u) << r->stdout_text;
}

// The forked path keeps what RunProcess promises: the given environment
// only, no descriptor of the caller, the group killed at the timeout, the
// same start errors.
TEST(SandboxTest, TheSandboxedStartKeepsEnvironmentDescriptorsTimeoutAndErrors) {
  ::setenv("FERRY_SANDBOX_SECRET", "s3cret", 1);
  int opened = ::open("/dev/null", O_RDONLY);  // no O_CLOEXEC on purpose
  ASSERT_GE(opened, 0);
  ASSERT_EQ(::dup2(opened, 57), 57);
  ::close(opened);
  ProcessOptions o = Sandboxed();
  o.env = {"ONLY=this"};
  o.stdin_data = "in";
  absl::StatusOr<ProcessResult> r =
      RunProcess({"/bin/sh", "-c", "cat; echo; env | grep -v '^PWD=' | sort; ls /proc/self/fd"}, o);
  ::close(57);
  ::unsetenv("FERRY_SANDBOX_SECRET");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_text, "in\nONLY=this\n0\n1\n2\n3\n") << r->stdout_text;

  ProcessOptions t = Sandboxed();
  t.timeout = absl::Milliseconds(300);
  absl::StatusOr<ProcessResult> slow = RunProcess({"/bin/sh", "-c", "sleep 30"}, t);
  ASSERT_TRUE(slow.ok()) << slow.status();
  EXPECT_TRUE(slow->timed_out);
  EXPECT_EQ(slow->limit_exceeded, "");

  absl::StatusOr<ProcessResult> missing = RunProcess({"/nonexistent/ferry-tool"}, Sandboxed());
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
  ProcessOptions w = Sandboxed();
  w.working_dir = "/nonexistent/ferry-dir";
  absl::StatusOr<ProcessResult> no_dir = RunProcess({"/bin/true"}, w);
  EXPECT_TRUE(absl::IsNotFound(no_dir.status())) << no_dir.status();
  EXPECT_NE(no_dir.status().message().find("/nonexistent/ferry-dir"), std::string::npos) << no_dir.status();
}

TEST(SandboxTest, AChildRunsAsTheGivenUidAndGidWithoutSupplementaryGroups) {
  if (getuid() != 0) GTEST_SKIP() << "needs root to change uid";
  ProcessOptions o;
  o.env = MinimalEnvironment();
  o.sandbox.emplace();
  o.sandbox->uid = 65534;
  o.sandbox->gid = 65534;
  absl::StatusOr<ProcessResult> r = RunProcess({"/bin/sh", "-c", "echo $(id -u) $(id -g) $(id -G)"}, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_text, "65534 65534 65534\n");
}

}  // namespace
}  // namespace ferry::process
