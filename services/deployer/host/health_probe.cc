#include "services/deployer/host/health_probe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "services/deployer/host/host_command.h"

namespace ferry::deployer::host {
namespace {

class Socket {
 public:
  Socket() : fd_(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) {}
  ~Socket() {
    if (fd_ >= 0) close(fd_);
  }
  int fd() const { return fd_; }

 private:
  int fd_;
};

int RemainingMs(absl::Time deadline) {
  return std::max<int>(0, static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now())));
}

// Connects within the deadline; returns an empty string on success.
std::string Connect(const Socket& s, int port, absl::Time deadline) {
  if (s.fd() < 0) return absl::StrCat("socket: ", strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(s.fd(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return "";
  if (errno != EINPROGRESS) return absl::StrCat("connect 127.0.0.1:", port, ": ", strerror(errno));
  pollfd p{s.fd(), POLLOUT, 0};
  if (poll(&p, 1, RemainingMs(deadline)) <= 0) return absl::StrCat("connect 127.0.0.1:", port, ": timed out");
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(s.fd(), SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) return absl::StrCat("connect 127.0.0.1:", port, ": ", strerror(err));
  return "";
}

}  // namespace

ProbeResult ProbeTcp(int port, absl::Duration timeout) {
  Socket s;
  std::string err = Connect(s, port, absl::Now() + timeout);
  if (!err.empty()) return {false, err};
  return {true, absl::StrCat("tcp 127.0.0.1:", port, " accepted")};
}

ProbeResult ProbeHttp(int port, const std::string& path, int expected_status, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  Socket s;
  std::string err = Connect(s, port, deadline);
  if (!err.empty()) return {false, err};
  std::string req = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1:", port,
                                 "\r\nUser-Agent: ferry-deployer\r\nConnection: close\r\n\r\n");
  size_t sent = 0;
  while (sent < req.size()) {
    pollfd p{s.fd(), POLLOUT, 0};
    if (poll(&p, 1, RemainingMs(deadline)) <= 0) return {false, "http: timed out sending request"};
    ssize_t n = send(s.fd(), req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return {false, absl::StrCat("http: send: ", strerror(errno))};
    }
    sent += n;
  }
  std::string resp;
  while (resp.find("\r\n") == std::string::npos && resp.size() < 4096) {
    pollfd p{s.fd(), POLLIN, 0};
    if (poll(&p, 1, RemainingMs(deadline)) <= 0) return {false, "http: timed out waiting for the status line"};
    char buf[1024];
    ssize_t n = recv(s.fd(), buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return {false, absl::StrCat("http: recv: ", strerror(errno))};
    }
    if (n == 0) break;
    resp.append(buf, n);
  }
  // "HTTP/1.x NNN reason"
  size_t sp = resp.find(' ');
  int status = 0;
  if (sp == std::string::npos || !absl::SimpleAtoi(resp.substr(sp + 1, 3), &status)) {
    return {false, "http: malformed response"};
  }
  std::string msg = absl::StrCat("GET 127.0.0.1:", port, path, " -> ", status);
  if (status != expected_status) return {false, absl::StrCat(msg, ", expected ", expected_status)};
  return {true, msg};
}

ProbeResult ProbeExec(const std::vector<std::string>& argv, absl::Duration timeout, const std::string& workdir,
                      const WorkloadIdentity& who) {
  absl::StatusOr<process::ProcessResult> r = process::RunProcess(argv, HostCommandOptions(timeout, workdir, who));
  if (!r.ok()) return {false, std::string(r.status().message())};
  if (r->timed_out) return {false, "exec check timed out"};
  std::string out = r->stdout_text.substr(0, 200);
  if (!r->succeeded()) return {false, absl::StrCat("exec check ", DescribeEnd(*r), ": ", out)};
  return {true, "exec check exited 0"};
}

int PickFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

}  // namespace ferry::deployer::host
