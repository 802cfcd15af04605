// RunProcess: explicit environment, closed descriptors, the process group
// killed at the timeout, bounded output, exit and signal reporting, errors.

#include "common/process/run_process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace ferry::process {
namespace {

ProcessOptions Options() {
  ProcessOptions o;
  o.env = MinimalEnvironment();
  o.timeout = absl::Seconds(30);
  return o;
}

// True once `pid` no longer exists (or is a zombie about to be reaped by
// whoever inherited it), waiting up to 5 s for that.
bool GoneSoon(pid_t pid) {
  absl::Time until = absl::Now() + absl::Seconds(5);
  while (absl::Now() < until) {
    if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
    std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
    std::string line;
    std::getline(stat, line);
    size_t close = line.rfind(')');
    if (close != std::string::npos && line.size() > close + 2 && line[close + 2] == 'Z') return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

TEST(RunProcessTest, TheChildSeesOnlyTheGivenEnvironmentNotTheCallers) {
  ::setenv("FERRY_DATABASE_URL", "postgresql://ferry:hunter2@db/ferry", 1);
  ProcessOptions o = Options();
  o.env.push_back("ONLY=this");
  absl::StatusOr<ProcessResult> r = RunProcess({"/usr/bin/env"}, o);
  ::unsetenv("FERRY_DATABASE_URL");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->succeeded());
  EXPECT_NE(r->stdout_text.find("ONLY=this\n"), std::string::npos) << r->stdout_text;
  EXPECT_NE(r->stdout_text.find("LANG=C.UTF-8\n"), std::string::npos) << r->stdout_text;
  EXPECT_EQ(r->stdout_text.find("hunter2"), std::string::npos) << "the caller's environment leaked:\n" << r->stdout_text;
  EXPECT_EQ(r->stdout_text.find("FERRY_DATABASE_URL"), std::string::npos) << r->stdout_text;
}

TEST(RunProcessTest, RunsInTheGivenFolderWithStdoutAndStderrApart) {
  ProcessOptions o = Options();
  o.working_dir = "/tmp";
  absl::StatusOr<ProcessResult> r = RunProcess({"/bin/sh", "-c", "pwd; echo oops >&2; exit 3"}, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_text, "/tmp\n");
  EXPECT_EQ(r->stderr_text, "oops\n");
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_TRUE(r->exited());
  EXPECT_FALSE(r->succeeded());
}

TEST(RunProcessTest, MergedStderrArrivesOnStdout) {
  ProcessOptions o = Options();
  o.merge_stderr_into_stdout = true;
  absl::StatusOr<ProcessResult> r = RunProcess({"/bin/sh", "-c", "echo a; echo b >&2; echo c"}, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_text, "a\nb\nc\n");
  EXPECT_EQ(r->stderr_text, "");
}

TEST(RunProcessTest, DescriptorsOfTheCallerAreClosedInTheChild) {
  int opened = ::open("/dev/null", O_RDONLY);  // no O_CLOEXEC on purpose
  ASSERT_GE(opened, 0);
  ASSERT_EQ(::dup2(opened, 57), 57);
  ::close(opened);
  absl::StatusOr<ProcessResult> r = RunProcess({"/bin/ls", "/proc/self/fd"}, Options());
  ::close(57);
  ASSERT_TRUE(r.ok()) << r.status();
  // 0, 1, 2 and the folder ls reads.
  EXPECT_EQ(r->stdout_text, "0\n1\n2\n3\n");
}

TEST(RunProcessTest, TheTimeoutKillsTheWholeProcessGroup) {
  ProcessOptions o = Options();
  o.timeout = absl::Milliseconds(500);
  absl::Time start = absl::Now();
  absl::StatusOr<ProcessResult> r = RunProcess({"/bin/sh", "-c", "sleep 30 & echo $!; sleep 30"}, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->term_signal, SIGKILL);
  EXPECT_FALSE(r->succeeded());
  pid_t grandchild = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripSuffix(r->stdout_text, "\n"), &grandchild)) << r->stdout_text;
  EXPECT_TRUE(GoneSoon(grandchild)) << "the grandchild sleep " << grandchild << " survived the timeout";
}

TEST(RunProcessTest, WhatIsLeftOfTheGroupIsKilledWhenTheChildExits) {
  absl::StatusOr<ProcessResult> r =
      RunProcess({"/bin/sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!"}, Options());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->succeeded());
  pid_t grandchild = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripSuffix(r->stdout_text, "\n"), &grandchild)) << r->stdout_text;
  EXPECT_TRUE(GoneSoon(grandchild)) << "the background sleep " << grandchild << " survived";
}

TEST(RunProcessTest, A100MegabyteWriterIsReadToTheEndButOnlyTheLimitIsKept) {
  ProcessOptions o = Options();
  o.max_stdout_bytes = 1000;
  o.max_stderr_bytes = 10;
  absl::Time start = absl::Now();
  absl::StatusOr<ProcessResult> r =
      RunProcess({"/bin/sh", "-c", "head -c 100000000 /dev/zero; head -c 100000 /dev/zero >&2"}, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));
  EXPECT_TRUE(r->succeeded()) << "exit " << r->exit_code << " signal " << r->term_signal;
  EXPECT_EQ(r->stdout_text.size(), 1000u);
  EXPECT_TRUE(r->stdout_truncated);
  EXPECT_EQ(r->stderr_text.size(), 10u);
  EXPECT_TRUE(r->stderr_truncated);
}

TEST(RunProcessTest, OutputWithinTheLimitIsNotFlaggedTruncated) {
  ProcessOptions o = Options();
  o.max_stdout_bytes = 6;
  absl::StatusOr<ProcessResult> r = RunProcess({"/bin/echo", "hello"}, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_text, "hello\n");
  EXPECT_FALSE(r->stdout_truncated);
}

TEST(RunProcessTest, AnEndlessWriterIsKilledAtTheLimitWhenAsked) {
  ProcessOptions o = Options();
  o.max_stdout_bytes = 1000;
  o.kill_at_stdout_limit = true;
  absl::StatusOr<ProcessResult> r = RunProcess({"/usr/bin/yes"}, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->stdout_truncated);
  EXPECT_FALSE(r->timed_out);
  EXPECT_EQ(r->term_signal, SIGKILL);
  EXPECT_EQ(r->stdout_text.size(), 1000u);
}

TEST(RunProcessTest, ReportsTheSignalThatEndedTheChild) {
  absl::StatusOr<ProcessResult> r = RunProcess({"/bin/sh", "-c", "kill -TERM $$"}, Options());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->term_signal, SIGTERM);
  EXPECT_EQ(r->exit_code, -1);
  EXPECT_FALSE(r->exited());
  EXPECT_FALSE(r->timed_out);
}

TEST(RunProcessTest, StdinIsTheGivenBytesOrEmpty) {
  ProcessOptions o = Options();
  o.stdin_data = std::string("hello\0world", 11);
  absl::StatusOr<ProcessResult> r = RunProcess({"/bin/cat"}, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_text, std::string("hello\0world", 11));
  absl::StatusOr<ProcessResult> empty = RunProcess({"/bin/cat"}, Options());
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->stdout_text, "");
  EXPECT_TRUE(empty->succeeded());
}

TEST(RunProcessTest, AMissingProgramIsAClearError) {
  absl::StatusOr<ProcessResult> r = RunProcess({"/nonexistent/ferry-tool", "x"}, Options());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsNotFound(r.status())) << r.status();
  EXPECT_NE(r.status().message().find("/nonexistent/ferry-tool"), std::string::npos) << r.status();
  absl::StatusOr<ProcessResult> bare = RunProcess({"ferry-no-such-tool"}, Options());
  ASSERT_FALSE(bare.ok());
  EXPECT_TRUE(absl::IsNotFound(bare.status())) << bare.status();
  EXPECT_NE(bare.status().message().find("ferry-no-such-tool"), std::string::npos) << bare.status();
  EXPECT_TRUE(absl::IsInvalidArgument(RunProcess({}, Options()).status()));
}

TEST(RunProcessTest, AMissingWorkingDirectoryIsAClearError) {
  ProcessOptions o = Options();
  o.working_dir = "/nonexistent/ferry-dir";
  absl::StatusOr<ProcessResult> r = RunProcess({"/bin/true"}, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("/nonexistent/ferry-dir"), std::string::npos) << r.status();
}

TEST(RunProcessTest, ABareNameIsLookedUpInTheChildsPathNotTheCallers) {
  char dir[] = "/tmp/ferry-run-process-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  std::string tool = std::string(dir) + "/ferry-fake-tool";
  {
    std::ofstream f(tool);
    f << "#!/bin/sh\necho fake tool ran\n";
  }
  ::chmod(tool.c_str(), 0755);
  ProcessOptions o;
  o.env = {absl::StrCat("PATH=", dir)};
  absl::StatusOr<ProcessResult> r = RunProcess({"ferry-fake-tool"}, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_text, "fake tool ran\n");
  // Not found with the default PATH, even if the caller's PATH had it.
  std::string saved = ::getenv("PATH") != nullptr ? ::getenv("PATH") : "";
  ::setenv("PATH", dir, 1);
  absl::StatusOr<ProcessResult> other = RunProcess({"ferry-fake-tool"}, Options());
  ::setenv("PATH", saved.c_str(), 1);
  EXPECT_TRUE(absl::IsNotFound(other.status())) << other.status();
  ::unlink(tool.c_str());
  ::rmdir(dir);
}

TEST(RunProcessTest, AFailedWaitIsAnErrorNeverAnExitCode) {
  // With SIGCHLD ignored the kernel reaps children itself, so waiting for
  // the child fails (ECHILD): its exit status is unknown.
  struct sigaction ignore{}, saved{};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  ASSERT_EQ(::sigaction(SIGCHLD, &ignore, &saved), 0);
  absl::StatusOr<ProcessResult> r = RunProcess({"/bin/sh", "-c", "exit 3"}, Options());
  ::sigaction(SIGCHLD, &saved, nullptr);
  ASSERT_FALSE(r.ok()) << "exit " << r->exit_code;
  EXPECT_TRUE(absl::IsInternal(r.status())) << r.status();
  EXPECT_NE(r.status().message().find("exit status is unknown"), std::string::npos) << r.status();
}

TEST(RunProcessTest, ConcurrentRunsKeepTheirOwnOutput) {
  std::vector<std::thread> threads;
  std::vector<std::string> outputs(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([i, &outputs] {
      absl::StatusOr<ProcessResult> r = RunProcess({"/bin/echo", absl::StrCat("run ", i)}, Options());
      outputs[i] = r.ok() ? r->stdout_text : r.status().ToString();
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < 8; ++i) EXPECT_EQ(outputs[i], absl::StrCat("run ", i, "\n"));
}

}  // namespace
}  // namespace ferry::process
