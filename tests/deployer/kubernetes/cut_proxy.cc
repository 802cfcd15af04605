#include "tests/deployer/kubernetes/cut_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

namespace ferry::deployer::kubernetes {
namespace {

int Connect(const std::string& host, int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

std::pair<std::string, int> HostPort(const std::string& server) {
  const std::string prefix = "https://";
  size_t colon = server.rfind(':');
  if (server.rfind(prefix, 0) != 0 || colon == std::string::npos || colon < prefix.size()) {
    std::cerr << "CutProxy: cannot read host and port of " << server << "\n";
    std::abort();
  }
  return {server.substr(prefix.size(), colon - prefix.size()), std::atoi(server.c_str() + colon + 1)};
}

CutProxy::CutProxy(const std::string& target_host, int target_port) : host_(target_host), target_port_(target_port) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (listen_fd_ < 0 || bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listen_fd_, 64) != 0 || getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::cerr << "CutProxy: cannot listen on 127.0.0.1\n";
    std::abort();
  }
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

CutProxy::~CutProxy() {
  stop_.store(true);
  Cut();
  acceptor_.join();
  std::vector<std::thread> relays;
  {
    ferry::MutexLock l(&mu_);
    relays.swap(relays_);
  }
  for (std::thread& t : relays) t.join();
  close(listen_fd_);
}

void CutProxy::Cut() {
  cut_.store(true);
  ferry::MutexLock l(&mu_);
  for (int fd : open_) shutdown(fd, SHUT_RDWR);  // The relay threads see EOF and close them.
}

void CutProxy::AcceptLoop() {
  while (!stop_.load()) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    if (cut_.load()) {
      refused_.fetch_add(1);
      close(client);
      continue;
    }
    ferry::MutexLock l(&mu_);
    relays_.emplace_back([this, client] { Relay(client); });
  }
}

void CutProxy::Relay(int client) {
  int server = Connect(host_, target_port_);
  if (server < 0) {
    close(client);
    return;
  }
  {
    ferry::MutexLock l(&mu_);
    if (cut_.load()) {  // Cut between accept and now.
      close(client);
      close(server);
      return;
    }
    open_.insert(client);
    open_.insert(server);
  }
  char buf[16384];
  bool done = false;
  while (!done && !stop_.load()) {
    pollfd p[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
    if (poll(p, 2, 200) < 0) break;
    for (int i = 0; i < 2 && !done; ++i) {
      if (p[i].revents == 0) continue;
      ssize_t n = read(p[i].fd, buf, sizeof(buf));
      if (n <= 0) {
        done = true;
        break;
      }
      int to = i == 0 ? server : client;
      ssize_t off = 0;
      while (off < n) {
        ssize_t w = send(to, buf + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);
        if (w <= 0) {
          done = true;
          break;
        }
        off += w;
      }
    }
  }
  ferry::MutexLock l(&mu_);
  open_.erase(client);
  open_.erase(server);
  close(client);
  close(server);
}

}  // namespace ferry::deployer::kubernetes
