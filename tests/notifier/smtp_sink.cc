#include "tests/notifier/smtp_sink.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace ferry::testing {
namespace {

bool WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// One CRLF-terminated line (without it), or false at EOF.
bool ReadLine(int fd, std::string& buffer, std::string& line) {
  while (true) {
    size_t pos = buffer.find("\r\n");
    if (pos != std::string::npos) {
      line = buffer.substr(0, pos);
      buffer.erase(0, pos + 2);
      return true;
    }
    char chunk[4096];
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer.append(chunk, static_cast<size_t>(n));
  }
}

std::string Address(const std::string& arg) {
  size_t open = arg.find('<');
  size_t close = arg.find('>');
  if (open == std::string::npos || close == std::string::npos) return arg;
  return arg.substr(open + 1, close - open - 1);
}

}  // namespace

SmtpSink::SmtpSink() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::listen(listen_fd_, 16);
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { Serve(); });
}

SmtpSink::~SmtpSink() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
  ::close(listen_fd_);
}

std::vector<SmtpSink::Mail> SmtpSink::Mails() const {
  MutexLock lock(&mu_);
  return mails_;
}

void SmtpSink::Serve() {
  while (true) {
    {
      MutexLock lock(&mu_);
      if (stop_) return;
    }
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) continue;
    Session(fd);  // one client at a time is plenty for tests
    ::close(fd);
  }
}

void SmtpSink::FailNext(int n, const std::string& reply) {
  MutexLock lock(&mu_);
  fail_next_ = n;
  fail_reply_ = reply;
}

void SmtpSink::Session(int fd) {
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string buffer;
  std::string line;
  Mail mail;
  if (!WriteAll(fd, "220 sink.test ESMTP ready\r\n")) return;
  while (ReadLine(fd, buffer, line)) {
    std::string upper = absl::AsciiStrToUpper(line);
    if (absl::StartsWith(upper, "EHLO")) {
      WriteAll(fd, "250-sink.test\r\n250 8BITMIME\r\n");
    } else if (absl::StartsWith(upper, "HELO")) {
      WriteAll(fd, "250 sink.test\r\n");
    } else if (absl::StartsWith(upper, "MAIL FROM:")) {
      mail = Mail{};
      mail.from = Address(line.substr(10));
      WriteAll(fd, "250 OK\r\n");
    } else if (absl::StartsWith(upper, "RCPT TO:")) {
      mail.to.push_back(Address(line.substr(8)));
      WriteAll(fd, "250 OK\r\n");
    } else if (upper == "DATA") {
      WriteAll(fd, "354 end with <CRLF>.<CRLF>\r\n");
      std::string data;
      while (ReadLine(fd, buffer, line) && line != ".") {
        if (absl::StartsWith(line, "..")) line.erase(0, 1);
        data += line + "\r\n";
      }
      mail.data = data;
      std::string reply = "250 OK queued";
      {
        MutexLock lock(&mu_);
        if (fail_next_ > 0) {
          --fail_next_;
          reply = fail_reply_;
        } else {
          mails_.push_back(mail);
        }
      }
      WriteAll(fd, reply + "\r\n");
    } else if (upper == "QUIT") {
      WriteAll(fd, "221 bye\r\n");
      return;
    } else if (upper == "RSET" || upper == "NOOP") {
      WriteAll(fd, "250 OK\r\n");
    } else {
      WriteAll(fd, "502 not implemented\r\n");
    }
  }
}

}  // namespace ferry::testing
