#pragma once

#include <memory>
#include <string>
#include <thread>

#include <prometheus/registry.h>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace ferry::server {

// /metrics over HTTPS (--metrics-tls-cert-file, --metrics-tls-key-file):
// cpp-httplib's SSLServer answering GET /metrics with the registry in the
// Prometheus text format. prometheus-cpp's Exposer cannot do it on Debian 12:
// its civetweb 1.15 loads OpenSSL at run time under the OpenSSL 1.1 names, and
// OpenSSL 3 has no SSL_get_peer_certificate (a macro now), so civetweb calls a
// null pointer on the first HTTPS connection and the process dies.
class MetricsTlsServer {
 public:
  // Binds `address` (host:port; port 0 picks one) and serves on a thread.
  // Errors name the flags and files, or the address.
  static absl::StatusOr<std::unique_ptr<MetricsTlsServer>> Start(const std::string& address,
                                                                 const std::string& cert_file,
                                                                 const std::string& key_file,
                                                                 std::shared_ptr<prometheus::Registry> registry);
  ~MetricsTlsServer();

  int port() const { return port_; }

 private:
  MetricsTlsServer() = default;
  std::unique_ptr<httplib::Server> server_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace ferry::server
