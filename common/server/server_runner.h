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

namespace ferry::server {

struct ServerOptions {
  std::string service_name;     // e.g. "audit"; used in logs and metrics
  std::string grpc_address;     // host:port; port 0 picks a free port
  std::string metrics_address;  // host:port for /metrics; port 0 picks one
  int threads = 16;             // bound on gRPC handler threads
  absl::Duration drain_timeout = absl::Seconds(10);
  std::string port_file;        // optional: "grpc=N\nmetrics=N\n" written after binding
};

// Runs one service's gRPC server: a synchronous server on a bounded thread
// pool, with server reflection, grpc.health.v1 and a Prometheus /metrics
// endpoint on its own port. Not copyable. Start/Shutdown from one thread;
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

  // Adds a callback run at shutdown, after health turns NOT_SERVING and
  // before in-flight RPCs drain: stop background loops and streams here.
  void OnShutdown(std::function<void()> fn);

  // Binds both ports, starts serving and marks every service SERVING.
  // Returns UNAVAILABLE when a port cannot be bound.
  absl::Status Start();

  int grpc_port() const { return grpc_port_; }
  int metrics_port() const { return metrics_port_; }

  // Marks the services NOT_SERVING, runs the OnShutdown callbacks, then
  // waits up to drain_timeout for in-flight RPCs before cancelling them.
  // Idempotent.
  void Shutdown();

 private:
  ServerOptions options_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::vector<grpc::Service*> services_;
  std::vector<std::function<void()>> on_shutdown_;
  std::unique_ptr<grpc::Server> server_;
  int grpc_port_ = 0;
  int metrics_port_ = 0;
  bool stopped_ = false;
};

// Blocks SIGTERM and SIGINT in the calling thread and every thread it starts
// afterwards. Call first thing in main(), before any thread exists.
void BlockTerminationSignals();

// Waits for SIGTERM or SIGINT (blocked by BlockTerminationSignals) and
// returns the signal number.
int WaitForTerminationSignal();

}  // namespace ferry::server
