#pragma once

#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "services/repo-watcher/bounded_http_server.h"
#include "services/repo-watcher/webhook_handler.h"

namespace ferry::repo_watcher {

// Optional TLS of the webhook listener: a certificate (with any
// intermediates) and its key, PEM. Both or neither.
struct WebhookTls {
  std::string cert_file;  // --webhook-tls-cert-file
  std::string key_file;   // --webhook-tls-key-file
};

// HTTP front of WebhookHandler (cpp-httplib): POST /webhooks/<provider>/<repository-id>.
// Bodies over `limits.max_body_bytes` get 413 before being read; heads,
// slow senders and connection floods are bounded by BoundedHttpServer.
// HTTPS (TLS 1.2 or later) when `tls` names a certificate and key.
// Start/Stop from one thread.
class WebhookServer {
 public:
  WebhookServer(WebhookHandler* handler, HttpLimits limits, WebhookTls tls = {});
  ~WebhookServer();

  // Binds `address` (host:port; port 0 picks one) and serves on a thread.
  // UNAVAILABLE when the address cannot be bound; INVALID_ARGUMENT or
  // NOT_FOUND naming the flag and file when the TLS files cannot be used.
  absl::Status Start(const std::string& address);
  int port() const { return port_; }
  bool tls() const { return !tls_.cert_file.empty(); }

  // Whether `tls` can be used (both files, a certificate and its key); the
  // error Start would return. For main, to stop before starting anything.
  static absl::Status CheckTls(const WebhookTls& tls);
  void Stop();

 private:
  WebhookHandler* handler_;
  const HttpLimits limits_;
  const size_t max_body_;
  const WebhookTls tls_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace ferry::repo_watcher
