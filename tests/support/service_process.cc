#include "tests/support/service_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include <grpcpp/grpcpp.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/support/test_database.h"

namespace ferry::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Tail(const std::string& s, size_t n = 4000) { return s.size() <= n ? s : s.substr(s.size() - n); }

// Waits for `pid` up to `timeout`. Returns true and the raw status when reaped.
bool WaitPid(pid_t pid, absl::Duration timeout, int* status) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid) return true;
    if (r < 0) return true;
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
}

std::vector<char*> CStrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

std::string BinaryPath(const std::string& name) { return absl::StrCat(FERRY_TEST_BIN_DIR, "/", name); }

absl::StatusOr<std::unique_ptr<ServiceProcess>> ServiceProcess::Start(const std::string& binary,
                                                                      std::vector<std::string> args,
                                                                      absl::Duration timeout) {
  auto p = std::unique_ptr<ServiceProcess>(new ServiceProcess());
  p->dir_ = MakeTempDir("ferry-svc");
  p->log_path_ = p->dir_ + "/" + binary + ".log";
  std::string port_file = p->dir_ + "/ports";
  std::vector<std::string> argv = {BinaryPath(binary)};
  bool has_grpc = false, has_metrics = false, has_tls = false, has_access = false, has_key = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    has_grpc |= a.rfind("--grpc-address", 0) == 0;
    has_metrics |= a.rfind("--metrics-address", 0) == 0;
    has_tls |= a.rfind("--tls-cert-file", 0) == 0 || a.rfind("--insecure-plaintext", 0) == 0;
    has_access |= a.rfind("--access-policy-file", 0) == 0 || a.rfind("--insecure-no-auth", 0) == 0;
    has_key |= a.rfind("--checkpoint-key-file", 0) == 0 || a.rfind("--trial-ephemeral-key", 0) == 0;
    if (a.rfind("--tls-ca-file=", 0) == 0) p->tls_ca_file_ = a.substr(a.find('=') + 1);
    if (a == "--tls-ca-file" && i + 1 < args.size()) p->tls_ca_file_ = args[i + 1];
  }
  if (!has_grpc) argv.push_back("--grpc-address=127.0.0.1:0");
  if (!has_metrics) argv.push_back("--metrics-address=127.0.0.1:0");
  if (!has_tls) {
    argv.push_back("--insecure-plaintext");
    // Plaintext and open, as tests before TLS and access control expect;
    // a test that brings its access policy keeps access control on.
    if (!has_access) argv.push_back("--insecure-no-auth");
  }
  // ferry-audit refuses to start without a persistent key: one in the
  // process's own directory unless the test brings its own.
  if (binary == "ferry-audit" && !has_key) argv.push_back("--checkpoint-key-file=" + p->dir_ + "/checkpoint.pem");
  // A root ferry-deployer refuses environments without runAs unless it has a
  // --workload-user: tests written before runAs (and run as root by CI) keep
  // running their workloads as the test's uid unless they bring their own.
  bool has_workload_user = false;
  for (const std::string& a : args) {
    has_workload_user |= a.rfind("--workload-user", 0) == 0 || a.rfind("--insecure-workloads-as-root", 0) == 0;
  }
  if (binary == "ferry-deployer" && geteuid() == 0 && !has_workload_user) {
    argv.push_back("--insecure-workloads-as-root");
  }
  argv.push_back("--port-file=" + port_file);
  argv.insert(argv.end(), args.begin(), args.end());

  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    int fd = open(p->log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> cargv = CStrings(argv);
    execv(cargv[0], cargv.data());
    _exit(127);
  }
  p->pid_ = pid;

  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      p->pid_ = -1;
      return absl::FailedPreconditionError(
          absl::StrCat(binary, " exited during start-up (status ", status, "):\n", Tail(p->Log())));
    }
    std::string ports = ReadFile(port_file);
    if (!ports.empty()) {
      for (absl::string_view line : absl::StrSplit(ports, '\n', absl::SkipEmpty())) {
        std::pair<std::string, std::string> kv = absl::StrSplit(line, '=');
        int v = 0;
        if (!absl::SimpleAtoi(kv.second, &v)) continue;
        if (kv.first == "grpc") p->grpc_port_ = v;
        if (kv.first == "metrics") p->metrics_port_ = v;
      }
      break;
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(binary, " did not listen in time:\n", Tail(p->Log())));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  absl::Status serving = WaitForServing(p->grpc_target(), deadline - absl::Now(), p->tls_ca_file_);
  if (!serving.ok()) return absl::Status(serving.code(), absl::StrCat(serving.message(), "\n", Tail(p->Log())));
  return p;
}

ServiceProcess::~ServiceProcess() { Kill(); }

std::string ServiceProcess::grpc_target() const { return absl::StrCat("127.0.0.1:", grpc_port_); }

std::string ServiceProcess::Log() const { return ReadFile(log_path_); }

absl::StatusOr<int> ServiceProcess::Stop(absl::Duration timeout) {
  if (pid_ <= 0) return absl::FailedPreconditionError("not running");
  kill(pid_, SIGTERM);
  int status = 0;
  if (!WaitPid(pid_, timeout, &status)) {
    Kill();
    return absl::DeadlineExceededError(absl::StrCat("did not exit within ", absl::FormatDuration(timeout)));
  }
  pid_ = -1;
  if (WIFSIGNALED(status)) return absl::InternalError(absl::StrCat("died from signal ", WTERMSIG(status)));
  return WEXITSTATUS(status);
}

void ServiceProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

absl::Status WaitForServing(const std::string& target, absl::Duration timeout, const std::string& tls_ca_file) {
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!tls_ca_file.empty()) {
    grpc::SslCredentialsOptions options;
    std::ifstream in(tls_ca_file);
    std::stringstream ca;
    ca << in.rdbuf();
    options.pem_root_certs = ca.str();
    credentials = grpc::SslCredentials(options);
  }
  auto channel = grpc::CreateChannel(target, credentials);
  auto stub = grpc::health::v1::Health::NewStub(channel);
  absl::Time deadline = absl::Now() + timeout;
  std::string last;
  while (absl::Now() < deadline) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    grpc::Status s = stub->Check(&ctx, req, &resp);
    if (s.ok() && resp.status() == grpc::health::v1::HealthCheckResponse::SERVING) return absl::OkStatus();
    last = s.ok() ? absl::StrCat("status ", resp.status()) : s.error_message();
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(absl::StrCat(target, " not SERVING: ", last));
}

CommandResult RunCommand(const std::vector<std::string>& argv_in, absl::Duration timeout,
                         const std::vector<std::string>& extra_env) {
  CommandResult result;
  int pipefd[2];
  if (pipe(pipefd) != 0) return result;
  std::vector<std::string> argv = argv_in;
  pid_t pid = fork();
  if (pid == 0) {
    close(pipefd[0]);
    dup2(pipefd[1], 1);
    dup2(pipefd[1], 2);
    for (const auto& e : extra_env) putenv(strdup(e.c_str()));
    std::vector<char*> cargv = CStrings(argv);
    execvp(cargv[0], cargv.data());
    _exit(127);
  }
  close(pipefd[1]);
  fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
  absl::Time deadline = absl::Now() + timeout;
  char buf[4096];
  int status = 0;
  bool reaped = false;
  while (true) {
    ssize_t n;
    while ((n = read(pipefd[0], buf, sizeof buf)) > 0) result.output.append(buf, n);
    if (reaped && n <= 0) break;
    if (!reaped && waitpid(pid, &status, WNOHANG) == pid) {
      reaped = true;
      continue;
    }
    if (absl::Now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      result.output += "\n[timed out]";
      close(pipefd[0]);
      return result;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  close(pipefd[0]);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

}  // namespace ferry::testing
