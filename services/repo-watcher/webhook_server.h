#pragma once

#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "services/repo-watcher/bounded_http_server.h"
#include "services/repo-watcher/webhook_handler.h"

namespace ferry::repo_watcher {

// HTTP front of WebhookHandler (cpp-httplib): POST /webhooks/<provider>/<repository-id>.
// Bodies over `limits.max_body_bytes` get 413 before being read; heads,
// slow senders and connection floods are bounded by BoundedHttpServer.
// Start/Stop from one thread.
class WebhookServer {
 public:
  WebhookServer(WebhookHandler* handler, HttpLimits limits);
  ~WebhookServer();

  // Binds `address` (host:port; port 0 picks one) and serves on a thread.
  // UNAVAILABLE when the address cannot be bound.
  absl::Status Start(const std::string& address);
  int port() const { return port_; }
  void Stop();

 private:
  WebhookHandler* handler_;
  const size_t max_body_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace ferry::repo_watcher
