#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/auth/tls.h"
#include "common/server/metrics_tls_server.h"
#include "common/server/stream_limiter.h"

namespace ferry::server {

struct ServerOptions {
  std::string service_name;     // e.g. "audit"; used in logs and metrics
  std::string grpc_address;     // host:port; port 0 picks a free port
  std::string metrics_address;  // host:port for /metrics; port 0 picks one
  int threads = 16;             // gRPC handler threads kept for unary calls
  int max_streams = 16;         // open streams per streaming RPC, any caller (StreamLimiter)
  int reserved_service_streams = 4;  // further streams per streaming RPC for Ferry services
  // Server keepalive: a ping after this long without traffic, and the
  // connection (and its streams' slots) dropped when no answer comes within
  // keepalive_timeout. Finds peers that vanished without closing.
  absl::Duration keepalive_time = absl::Seconds(60);
  absl::Duration keepalive_timeout = absl::Seconds(20);
  absl::Duration drain_timeout = absl::Seconds(10);
  std::string port_file = "";   // optional: "grpc=N\nmetrics=N\n" written after binding
  // TLS of the gRPC port and of the channels to peers (runner.tls()). Null
  // is plaintext, for tests that build a runner themselves; services get it
  // from Bootstrap, which refuses to start without certificates unless
  // --insecure-plaintext. Plaintext is logged as a warning at Start.
  std::shared_ptr<const auth::Tls> tls = nullptr;
  // Optional TLS of /metrics (--metrics-tls-cert-file, --metrics-tls-key-file):
  // a certificate and its key, PEM. Both or neither.
  std::string metrics_tls_cert_file = "";
  std::string metrics_tls_key_file = "";
};

// Runs one service's gRPC server: a synchronous server on a bounded thread
// pool, with server reflection, grpc.health.v1 and a Prometheus /metrics
// endpoint on its own port. The thread limit (grpc::ResourceQuota) is
// `threads` for unary calls plus the capacity of every StreamLimiter made by
// NewStreamLimiter plus one poller, so open streams never take the threads of
// unary calls. Not copyable. Start/Shutdown from one thread;
// registry() and the ports may be read from any thread after Start().
class ServerRunner {
 public:
  explicit ServerRunner(ServerOptions options);
  ~ServerRunner();

  // The process's metrics registry, exposed on /metrics once started.
  prometheus::Registry& registry() { return *registry_; }
  std::shared_ptr<prometheus::Registry> shared_registry() { return registry_; }

  // Adds a service; it must outlive the runner. Call before Start().
  void AddService(grpc::Service* service);

  // A stream limiter for one server-streaming RPC of this server, sized by
  // max_streams and reserved_service_streams; its capacity is added to the
  // thread limit. Owned by the runner. Call before Start().
  StreamLimiter* NewStreamLimiter(const std::string& rpc);

  // The server's thread limit: threads + every limiter's capacity + 1.
  int max_threads() const;

  // Adds a callback run at shutdown, after health turns NOT_SERVING and
  // before in-flight RPCs drain: stop background loops and streams here.
  void OnShutdown(std::function<void()> fn);

  // Binds both ports, starts serving and marks every service SERVING.
  // Returns UNAVAILABLE when a port cannot be bound.
  absl::Status Start();

  int grpc_port() const { return grpc_port_; }
  // The TLS settings of this service (never null; plaintext() when off):
  // ServerCredentials for this port, Channel(address, peer) to other services.
  const std::shared_ptr<const auth::Tls>& tls() const { return options_.tls; }
  int metrics_port() const { return metrics_port_; }

  // Marks the services NOT_SERVING, runs the OnShutdown callbacks, then
  // waits up to drain_timeout for in-flight RPCs before cancelling them.
  // Idempotent.
  void Shutdown();

 private:
  ServerOptions options_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;        // /metrics over HTTP
  std::unique_ptr<MetricsTlsServer> metrics_tls_;      // or over HTTPS
  std::vector<grpc::Service*> services_;
  std::vector<std::unique_ptr<StreamLimiter>> limiters_;
  std::vector<std::function<void()>> on_shutdown_;
  std::unique_ptr<grpc::Server> server_;
  int grpc_port_ = 0;
  int metrics_port_ = 0;
  bool stopped_ = false;
};

// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread and every thread it
// starts afterwards. Call first thing in main(), before any thread exists.
void BlockTerminationSignals();

// Waits for SIGTERM or SIGINT (blocked by BlockTerminationSignals) and
// returns the signal number. Each SIGHUP meanwhile runs `on_hangup` (re-read
// configuration such as the access policy) and keeps waiting.
int WaitForTerminationSignal(const std::function<void()>& on_hangup = nullptr);

}  // namespace ferry::server
