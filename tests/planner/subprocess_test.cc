// RunSubprocess: clean environment, timeout, bounded output, no leaked fds.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "services/planner/subprocess.h"

namespace ferry::planner {
namespace {

TEST(SubprocessTest, RunsWithOnlyTheGivenEnvironmentInTheGivenFolder) {
  SubprocessOptions o;
  o.env = {"PATH=/usr/bin:/bin", "ONLY=this"};
  o.working_dir = "/tmp";
  setenv("FERRY_SECRET_FOR_TEST", "hunter2", 1);
  auto r = RunSubprocess({"/bin/sh", "-c", "env; pwd; echo oops >&2; exit 3"}, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_NE(r->stdout_text.find("ONLY=this"), std::string::npos);
  EXPECT_EQ(r->stdout_text.find("hunter2"), std::string::npos) << "the parent's environment leaked";
  EXPECT_NE(r->stdout_text.find("\n/tmp\n"), std::string::npos) << r->stdout_text;
  EXPECT_EQ(r->stderr_text, "oops\n");
}

TEST(SubprocessTest, KillsTheWholeGroupAtTheTimeout) {
  SubprocessOptions o;
  o.env = {"PATH=/usr/bin:/bin"};
  o.timeout = absl::Milliseconds(300);
  absl::Time start = absl::Now();
  auto r = RunSubprocess({"/bin/sh", "-c", "sleep 30 & sleep 30"}, o);
  EXPECT_TRUE(absl::IsDeadlineExceeded(r.status())) << r.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST(SubprocessTest, BoundsTheOutput) {
  SubprocessOptions o;
  o.env = {"PATH=/usr/bin:/bin"};
  o.max_output_bytes = 1000;
  auto r = RunSubprocess({"/bin/sh", "-c", "yes"}, o);
  EXPECT_TRUE(absl::IsResourceExhausted(r.status())) << r.status();
}

TEST(SubprocessTest, OpenDescriptorsAreNotInherited) {
  int opened = ::open("/dev/null", O_RDONLY);  // no O_CLOEXEC on purpose
  ASSERT_GE(opened, 0);
  int fd = ::dup2(opened, 57);
  ::close(opened);
  ASSERT_EQ(fd, 57);
  SubprocessOptions o;
  o.env = {"PATH=/usr/bin:/bin"};
  auto r = RunSubprocess({"/bin/sh", "-c", "ls /proc/self/fd"}, o);
  ::close(fd);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stdout_text.find("57\n"), std::string::npos) << r->stdout_text;
}

}  // namespace
}  // namespace ferry::planner
