#include "services/repo-watcher/webhook_server.h"

#include <httplib.h>
#include <openssl/ssl.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/auth/key_pair.h"

namespace ferry::repo_watcher {
namespace {

WebhookRequest FromHttp(const httplib::Request& req, const std::string& provider, const std::string& id) {
  WebhookRequest out;
  out.provider = provider;
  out.repository_id = id;
  for (const auto& [k, v] : req.headers) out.headers[absl::AsciiStrToLower(k)] = v;
  out.body = req.body;
  out.remote_address = absl::StrCat(req.remote_addr, ":", req.remote_port);
  return out;
}

void Send(httplib::Response& res, const WebhookResponse& r) {
  res.status = r.status;
  res.set_content(r.body, "text/plain");
}

// The OpenSSL server context of the listener's certificate and key.
absl::StatusOr<std::shared_ptr<SSL_CTX>> ServerContext(const WebhookTls& tls) {
  if (tls.cert_file.empty() || tls.key_file.empty()) {
    return absl::InvalidArgumentError("--webhook-tls-cert-file and --webhook-tls-key-file go together");
  }
  absl::StatusOr<auth::KeyPair> pair =
      auth::KeyPair::Load("--webhook-tls-cert-file", tls.cert_file, "--webhook-tls-key-file", tls.key_file);
  if (!pair.ok()) return pair.status();
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (ctx == nullptr) return absl::InternalError("cannot make an OpenSSL context");
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION);
  if (absl::Status used = pair->UseIn(ctx.get()); !used.ok()) return used;
  return ctx;
}

}  // namespace

WebhookServer::WebhookServer(WebhookHandler* handler, HttpLimits limits, WebhookTls tls)
    : handler_(handler), limits_(limits), max_body_(limits.max_body_bytes), tls_(std::move(tls)) {}

WebhookServer::~WebhookServer() { Stop(); }

absl::Status WebhookServer::CheckTls(const WebhookTls& tls) {
  if (tls.cert_file.empty() && tls.key_file.empty()) return absl::OkStatus();
  return ServerContext(tls).status();
}

absl::Status WebhookServer::Start(const std::string& address) {
  size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port)) {
    return absl::InvalidArgumentError(absl::StrCat("--webhook-address: \"", address, "\" is not host:port"));
  }
  std::string host = address.substr(0, colon);
  std::shared_ptr<SSL_CTX> tls;
  if (!tls_.cert_file.empty() || !tls_.key_file.empty()) {
    absl::StatusOr<std::shared_ptr<SSL_CTX>> ctx = ServerContext(tls_);
    if (!ctx.ok()) return ctx.status();
    tls = std::move(*ctx);
  }
  server_ = NewBoundedHttpServer(limits_, std::move(tls));
  server_->set_tcp_nodelay(true);
  server_->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!req.has_header("Content-Length")) return httplib::Server::HandlerResponse::Unhandled;
    uint64_t length = 0;
    if (!absl::SimpleAtoi(req.get_header_value("Content-Length"), &length) || length <= max_body_) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    std::string provider, id;
    std::vector<std::string> parts;
    // /webhooks/<provider>/<id>
    const std::string prefix = "/webhooks/";
    if (req.path.rfind(prefix, 0) == 0) {
      std::string rest = req.path.substr(prefix.size());
      size_t slash = rest.find('/');
      provider = rest.substr(0, slash);
      if (slash != std::string::npos) id = rest.substr(slash + 1);
    }
    Send(res, handler_->RejectTooLarge(FromHttp(req, provider, id), length, max_body_));
    res.set_header("Connection", "close");
    return httplib::Server::HandlerResponse::Handled;
  });
  server_->Post(R"(/webhooks/([^/]+)/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    Send(res, handler_->Handle(FromHttp(req, req.matches[1], req.matches[2])));
  });
  if (port == 0) {
    port_ = server_->bind_to_any_port(host);
  } else {
    port_ = server_->bind_to_port(host, port) ? port : -1;
  }
  if (port_ <= 0) return absl::UnavailableError(absl::StrCat("cannot serve webhooks on ", address));
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return absl::OkStatus();
}

void WebhookServer::Stop() {
  if (server_ != nullptr) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace ferry::repo_watcher
