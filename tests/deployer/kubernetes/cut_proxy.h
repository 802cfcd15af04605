#pragma once

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/concurrency/mutex.h"

namespace ferry::deployer::kubernetes {

// A TCP relay on 127.0.0.1 in front of the test API server that a test can
// cut: Cut() ends every relayed connection at once and closes each new one
// as soon as it is accepted (a cluster out of reach, a watch's connection
// lost), Restore() relays again. TLS passes through untouched (the server's
// certificate names 127.0.0.1), so a client pointed at port() verifies the
// real server. Aborts the test binary when it cannot listen.
class CutProxy {
 public:
  CutProxy(const std::string& target_host, int target_port);
  ~CutProxy();
  CutProxy(const CutProxy&) = delete;
  CutProxy& operator=(const CutProxy&) = delete;

  int port() const { return port_; }
  void Cut() ABSL_LOCKS_EXCLUDED(mu_);
  void Restore() { cut_.store(false); }
  // Connections accepted while cut (closed at once): the client's retries.
  int refused() const { return refused_.load(); }

 private:
  void AcceptLoop();
  void Relay(int client);

  std::string host_;
  int target_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false}, cut_{false};
  std::atomic<int> refused_{0};
  std::thread acceptor_;
  ferry::Mutex mu_;
  std::set<int> open_ ABSL_GUARDED_BY(mu_);  // Sockets of relayed connections (both ends).
  std::vector<std::thread> relays_ ABSL_GUARDED_BY(mu_);
};

// "https://127.0.0.1:<port>" -> {"127.0.0.1", port}; aborts on anything else.
std::pair<std::string, int> HostPort(const std::string& server);

}  // namespace ferry::deployer::kubernetes
