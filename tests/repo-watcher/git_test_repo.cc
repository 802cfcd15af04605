#include "tests/repo-watcher/git_test_repo.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "tests/support/service_process.h"

namespace ferry::testing {
namespace {

std::vector<std::string> BaseEnv(const std::string& home) {
  return {"HOME=" + home,
          "GIT_CONFIG_NOSYSTEM=1",
          "GIT_AUTHOR_NAME=Ferry Test",
          "GIT_AUTHOR_EMAIL=test@ferry.example",
          "GIT_COMMITTER_NAME=Ferry Test",
          "GIT_COMMITTER_EMAIL=test@ferry.example",
          "GIT_TERMINAL_PROMPT=0"};
}

std::string RunGit(const std::string& home, const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  std::vector<std::string> all_env = BaseEnv(home);
  all_env.insert(all_env.end(), env.begin(), env.end());
  CommandResult r = RunCommand(argv, absl::Seconds(60), all_env);
  EXPECT_EQ(r.exit_code, 0) << absl::StrJoin(argv, " ") << "\n" << r.output;
  return std::string(absl::StripAsciiWhitespace(r.output));
}

}  // namespace

GitTestRepo::GitTestRepo(const std::string& dir) {
  home_ = dir + "/home";
  remote_ = dir + "/remote.git";
  work_ = dir + "/work";
  std::filesystem::create_directories(home_);
  RunGit(home_, {"git", "init", "-q", "--bare", "-b", "main", remote_}, {});
  RunGit(home_, {"git", "init", "-q", "-b", "main", work_}, {});
  Git({"remote", "add", "origin", remote_});
}

std::string GitTestRepo::Git(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  std::vector<std::string> argv = {"git", "-C", work_};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunGit(home_, argv, env);
}

std::string GitTestRepo::Commit(const std::map<std::string, std::string>& files, const std::string& message,
                                const std::vector<std::string>& commit_args, const std::vector<std::string>& env) {
  for (const auto& [path, content] : files) {
    if (!path.empty() && path[0] == '-') {
      Git({"rm", "-q", "-r", path.substr(1)});
      continue;
    }
    std::filesystem::path full = std::filesystem::path(work_) / path;
    std::filesystem::create_directories(full.parent_path());
    std::ofstream(full, std::ios::binary | std::ios::trunc) << content;
    Git({"add", path});
  }
  std::vector<std::string> args = {"commit", "-q", "--allow-empty", "-m", message};
  args.insert(args.end(), commit_args.begin(), commit_args.end());
  Git(args, env);
  return Git({"rev-parse", "HEAD"});
}

void GitTestRepo::Push(const std::string& refspec) { Git({"push", "-q", "origin", refspec}); }

GitHttpServer::GitHttpServer(const std::string& root, const std::string& basic_auth) {
  std::string port_file = root + "/.http-port";
  std::filesystem::remove(port_file);
  pid_ = fork();
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    std::string script = FERRY_GIT_HTTP_SERVER;
    execl("/usr/bin/python3", "python3", script.c_str(), root.c_str(), port_file.c_str(), basic_auth.c_str(), nullptr);
    _exit(127);
  }
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    std::ifstream in(port_file);
    if (in >> port_) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
}

GitHttpServer::~GitHttpServer() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

std::string GitHttpServer::UrlFor(const std::string& relative) const {
  return absl::StrCat("http://127.0.0.1:", port_, "/", relative);
}

std::string IncompressibleBytes(size_t n) {
  std::string out(n, '\0');
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (char& c : out) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  return out;
}

}  // namespace ferry::testing
