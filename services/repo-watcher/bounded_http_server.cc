#include "services/repo-watcher/bounded_http_server.h"

#include <httplib.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/clock.h"
#include "common/concurrency/mutex.h"

namespace ferry::repo_watcher {
namespace {

// Set while the accept thread runs a connection the pool has no room for.
thread_local bool overloaded = false;

// A fixed pool of workers with a bounded queue. A connection that finds the
// queue full is run on the accept thread with `overloaded` set, so that
// process_and_close_socket answers 503 and closes it at once.
class BoundedPool final : public httplib::TaskQueue {
 public:
  BoundedPool(size_t workers, size_t max_pending) : max_pending_(max_pending) {
    for (size_t i = 0; i < workers; ++i) threads_.emplace_back([this] { Work(); });
  }
  ~BoundedPool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    {
      MutexLock lock(&mu_);
      if (jobs_.size() < max_pending_ && !stop_) {
        jobs_.push_back(std::move(fn));
        cv_.Signal();
        return;
      }
    }
    overloaded = true;
    fn();
    overloaded = false;
  }

  void shutdown() override {
    {
      MutexLock lock(&mu_);
      stop_ = true;
      cv_.SignalAll();
    }
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  void Work() {
    for (;;) {
      std::function<void()> fn;
      {
        MutexLock lock(&mu_);
        while (jobs_.empty() && !stop_) cv_.Wait(&mu_);
        if (jobs_.empty()) return;  // stopping, nothing left
        fn = std::move(jobs_.front());
        jobs_.pop_front();
      }
      fn();
    }
  }

  const size_t max_pending_;
  Mutex mu_;
  CondVar cv_;
  std::deque<std::function<void()>> jobs_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

std::string AddressOf(const sockaddr_storage& addr, int* port) {
  char text[INET6_ADDRSTRLEN] = {0};
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    *port = ntohs(in->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    *port = ntohs(in6->sin6_port);
  }
  return text;
}

// Whether `sock` is ready for `events` within `io_timeout` and before
// `deadline`.
bool WaitReady(socket_t sock, short events, absl::Duration io_timeout, absl::Time deadline) {
  absl::Duration left = std::min(io_timeout, deadline - absl::Now());
  if (left <= absl::ZeroDuration()) return false;
  pollfd p{.fd = sock, .events = events, .revents = 0};
  int ms = static_cast<int>(std::max<int64_t>(1, absl::ToInt64Milliseconds(left)));
  int r;
  do {
    r = poll(&p, 1, ms);
  } while (r < 0 && errno == EINTR);
  return r > 0 && (p.revents & (events | POLLHUP | POLLERR)) != 0;
}

void PeerAddress(socket_t sock, std::string& ip, int& port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (getpeername(sock, reinterpret_cast<sockaddr*>(&addr), &len) == 0) ip = AddressOf(addr, &port);
}

void LocalAddress(socket_t sock, std::string& ip, int& port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (getsockname(sock, reinterpret_cast<sockaddr*>(&addr), &len) == 0) ip = AddressOf(addr, &port);
}

// A socket that gives httplib at most `budget` bytes, each read and write
// within `io_timeout` and all before `deadline`.
class BoundedSocketStream final : public httplib::Stream {
 public:
  BoundedSocketStream(socket_t sock, size_t budget, absl::Duration io_timeout, absl::Time deadline)
      : sock_(sock), budget_(budget), io_timeout_(io_timeout), deadline_(deadline) {}

  bool is_readable() const override { return Ready(POLLIN); }
  bool is_writable() const override { return Ready(POLLOUT); }

  ssize_t read(char* ptr, size_t size) override {
    if (budget_ == 0 || !Ready(POLLIN)) return -1;
    ssize_t n = recv(sock_, ptr, std::min(size, budget_), 0);
    if (n > 0) budget_ -= static_cast<size_t>(n);
    return n;
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!Ready(POLLOUT)) return -1;
    return send(sock_, ptr, size, MSG_NOSIGNAL);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override { PeerAddress(sock_, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { LocalAddress(sock_, ip, port); }
  socket_t socket() const override { return sock_; }

 private:
  bool Ready(short events) const { return WaitReady(sock_, events, io_timeout_, deadline_); }

  const socket_t sock_;
  size_t budget_;
  const absl::Duration io_timeout_;
  const absl::Time deadline_;
};

struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};

// Runs one step of OpenSSL on a non-blocking socket until it succeeds,
// waiting for the socket as OpenSSL asks, within the bounds. Returns the
// step's result (> 0) or <= 0 with *ssl_error set.
template <typename Step>
int RunSslStep(SSL* ssl, socket_t sock, absl::Duration io_timeout, absl::Time deadline, Step step, int* ssl_error) {
  for (;;) {
    ERR_clear_error();
    int r = step();
    if (r > 0) return r;
    *ssl_error = SSL_get_error(ssl, r);
    short events = *ssl_error == SSL_ERROR_WANT_READ ? POLLIN : *ssl_error == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
    if (events == 0 || !WaitReady(sock, events, io_timeout, deadline)) {
      ERR_clear_error();
      return r;
    }
  }
}

// The decrypted side of a TLS connection, with the bounds of
// BoundedSocketStream.
class BoundedTlsStream final : public httplib::Stream {
 public:
  BoundedTlsStream(SSL* ssl, socket_t sock, size_t budget, absl::Duration io_timeout, absl::Time deadline)
      : ssl_(ssl), sock_(sock), budget_(budget), io_timeout_(io_timeout), deadline_(deadline) {}

  bool is_readable() const override {
    return SSL_pending(ssl_) > 0 || WaitReady(sock_, POLLIN, io_timeout_, deadline_);
  }
  bool is_writable() const override { return WaitReady(sock_, POLLOUT, io_timeout_, deadline_); }

  ssize_t read(char* ptr, size_t size) override {
    if (budget_ == 0) return -1;
    int want = static_cast<int>(std::min({size, budget_, size_t{INT_MAX}}));
    int error = 0;
    int n = RunSslStep(ssl_, sock_, io_timeout_, deadline_, [&] { return SSL_read(ssl_, ptr, want); }, &error);
    if (n > 0) {
      budget_ -= static_cast<size_t>(n);
      return n;
    }
    return error == SSL_ERROR_ZERO_RETURN ? 0 : -1;
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (size == 0) return 0;
    int len = static_cast<int>(std::min(size, size_t{INT_MAX}));
    int error = 0;
    int n = RunSslStep(ssl_, sock_, io_timeout_, deadline_, [&] { return SSL_write(ssl_, ptr, len); }, &error);
    return n > 0 ? n : -1;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override { PeerAddress(sock_, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { LocalAddress(sock_, ip, port); }
  socket_t socket() const override { return sock_; }

 private:
  SSL* const ssl_;
  const socket_t sock_;
  size_t budget_;
  const absl::Duration io_timeout_;
  const absl::Time deadline_;
};

class BoundedHttpServer final : public httplib::Server {
 public:
  BoundedHttpServer(HttpLimits limits, std::shared_ptr<SSL_CTX> tls);

 private:
  bool process_and_close_socket(socket_t sock) override;
  // Handshake, then one request, over TLS.
  bool ServeTls(socket_t sock);

  const HttpLimits limits_;
  const std::shared_ptr<SSL_CTX> tls_;
};

BoundedHttpServer::BoundedHttpServer(HttpLimits limits, std::shared_ptr<SSL_CTX> tls)
    : limits_(limits), tls_(std::move(tls)) {
  new_task_queue = [workers = limits_.workers, pending = limits_.max_pending] {
    return new BoundedPool(workers, pending);
  };
  set_payload_max_length(limits_.max_body_bytes);
}

bool BoundedHttpServer::process_and_close_socket(socket_t sock) {
  bool ok = false;
  if (overloaded) {
    static constexpr char kBusy[] =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\nRetry-After: 1\r\n\r\n";
    if (tls_ == nullptr) (void)!send(sock, kBusy, sizeof kBusy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
  } else if (tls_ != nullptr) {
    ok = ServeTls(sock);
  } else {
    BoundedSocketStream stream(sock, limits_.max_head_bytes + limits_.max_body_bytes, limits_.io_timeout,
                               absl::Now() + limits_.request_timeout);
    bool closed = false;
    ok = process_request(stream, /*close_connection=*/true, closed, nullptr);
  }
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return ok;
}

bool BoundedHttpServer::ServeTls(socket_t sock) {
  const absl::Time deadline = absl::Now() + limits_.request_timeout;
  // Non-blocking, so that a record that arrives in pieces never blocks
  // SSL_read past the bounds; every wait is WaitReady's.
  int flags = fcntl(sock, F_GETFL);
  if (flags < 0 || fcntl(sock, F_SETFL, flags | O_NONBLOCK) < 0) return false;
  std::unique_ptr<SSL, SslFree> ssl(SSL_new(tls_.get()));
  if (ssl == nullptr || SSL_set_fd(ssl.get(), sock) != 1) return false;
  SSL_set_mode(ssl.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  int error = 0;
  if (RunSslStep(ssl.get(), sock, limits_.io_timeout, deadline, [&] { return SSL_accept(ssl.get()); }, &error) <= 0) {
    return false;
  }
  BoundedTlsStream stream(ssl.get(), sock, limits_.max_head_bytes + limits_.max_body_bytes, limits_.io_timeout,
                          deadline);
  bool closed = false;
  bool ok = process_request(stream, /*close_connection=*/true, closed, nullptr);
  ERR_clear_error();
  SSL_shutdown(ssl.get());  // one close_notify, not waiting for the peer's
  ERR_clear_error();
  return ok;
}

}  // namespace

std::unique_ptr<httplib::Server> NewBoundedHttpServer(HttpLimits limits, std::shared_ptr<SSL_CTX> tls) {
  return std::make_unique<BoundedHttpServer>(limits, std::move(tls));
}

}  // namespace ferry::repo_watcher
