#include "services/repo-watcher/bounded_http_server.h"

#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
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

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (getpeername(sock_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) ip = AddressOf(addr, &port);
  }

  void get_local_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (getsockname(sock_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) ip = AddressOf(addr, &port);
  }

  socket_t socket() const override { return sock_; }

 private:
  // Whether the socket is ready for `events` within the I/O timeout and
  // before the request's deadline.
  bool Ready(short events) const {
    absl::Duration left = std::min(io_timeout_, deadline_ - absl::Now());
    if (left <= absl::ZeroDuration()) return false;
    pollfd p{.fd = sock_, .events = events, .revents = 0};
    int ms = static_cast<int>(std::max<int64_t>(1, absl::ToInt64Milliseconds(left)));
    int r;
    do {
      r = poll(&p, 1, ms);
    } while (r < 0 && errno == EINTR);
    return r > 0 && (p.revents & (events | POLLHUP | POLLERR)) != 0;
  }

  const socket_t sock_;
  size_t budget_;
  const absl::Duration io_timeout_;
  const absl::Time deadline_;
};

class BoundedHttpServer final : public httplib::Server {
 public:
  explicit BoundedHttpServer(HttpLimits limits);

 private:
  bool process_and_close_socket(socket_t sock) override;

  const HttpLimits limits_;
};

BoundedHttpServer::BoundedHttpServer(HttpLimits limits) : limits_(limits) {
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
    (void)!send(sock, kBusy, sizeof kBusy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
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

}  // namespace

std::unique_ptr<httplib::Server> NewBoundedHttpServer(HttpLimits limits) {
  return std::make_unique<BoundedHttpServer>(limits);
}

}  // namespace ferry::repo_watcher
