#include "common/server/metrics_tls_server.h"

#include <httplib.h>
#include <openssl/ssl.h>
#include <prometheus/text_serializer.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/auth/key_pair.h"

namespace ferry::server {

absl::StatusOr<std::unique_ptr<MetricsTlsServer>> MetricsTlsServer::Start(
    const std::string& address, const std::string& cert_file, const std::string& key_file,
    std::shared_ptr<prometheus::Registry> registry) {
  if (cert_file.empty() || key_file.empty()) {
    return absl::InvalidArgumentError("--metrics-tls-cert-file and --metrics-tls-key-file go together");
  }
  absl::StatusOr<auth::KeyPair> pair =
      auth::KeyPair::Load("--metrics-tls-cert-file", cert_file, "--metrics-tls-key-file", key_file);
  if (!pair.ok()) return pair.status();
  size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port)) {
    return absl::InvalidArgumentError(absl::StrCat("--metrics-address: \"", address, "\" is not host:port"));
  }
  std::string host = address.substr(0, colon);
  auto out = std::unique_ptr<MetricsTlsServer>(new MetricsTlsServer());
  out->registry_ = std::move(registry);
  absl::Status setup = absl::OkStatus();
  out->server_ = std::make_unique<httplib::SSLServer>([&](SSL_CTX& ctx) {
    SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
    setup = pair->UseIn(&ctx);
    return setup.ok();
  });
  if (!setup.ok()) return setup;
  if (!out->server_->is_valid()) return absl::InternalError("cannot set up TLS for /metrics");
  prometheus::Registry* r = out->registry_.get();
  out->server_->Get("/metrics", [r](const httplib::Request&, httplib::Response& res) {
    res.set_content(prometheus::TextSerializer().Serialize(r->Collect()), "text/plain; version=0.0.4");
  });
  out->port_ = port == 0 ? out->server_->bind_to_any_port(host) : (out->server_->bind_to_port(host, port) ? port : -1);
  if (out->port_ <= 0) return absl::UnavailableError(absl::StrCat("cannot serve metrics on ", address));
  httplib::Server* server = out->server_.get();
  out->thread_ = std::thread([server] { server->listen_after_bind(); });
  return out;
}

MetricsTlsServer::~MetricsTlsServer() {
  if (server_ != nullptr) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace ferry::server
