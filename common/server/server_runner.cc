#include "common/server/server_runner.h"

#include <signal.h>

#include <cstdio>
#include <fstream>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>
#include <prometheus/gauge.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging/logger.h"
#include "common/server/reflection_stream_limit.h"

namespace ferry::server {
namespace {

absl::Status WritePortFile(const std::string& path, int grpc_port, int metrics_port) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "grpc=" << grpc_port << "\nmetrics=" << metrics_port << "\n";
    if (!out) return absl::InternalError(absl::StrCat("cannot write port file ", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename port file to ", path));
  }
  return absl::OkStatus();
}

}  // namespace

ServerRunner::ServerRunner(ServerOptions options)
    : options_(std::move(options)), registry_(std::make_shared<prometheus::Registry>()) {
  if (options_.tls == nullptr) options_.tls = auth::Tls::Plaintext();
}

ServerRunner::~ServerRunner() {
  Shutdown();
  // Destroying a prometheus::Exposer (civetweb) blocks for one to two
  // seconds; there is one per process and it lives until exit, so it is
  // deliberately not destroyed.
  (void)exposer_.release();
}

void ServerRunner::AddService(grpc::Service* service) { services_.push_back(service); }

StreamLimiter* ServerRunner::NewStreamLimiter(const std::string& rpc) {
  limiters_.push_back(std::make_unique<StreamLimiter>(
      StreamLimit{.service = options_.service_name,
                  .rpc = rpc,
                  .max_streams = options_.max_streams,
                  .reserved_for_services = options_.reserved_service_streams},
      registry_.get()));
  return limiters_.back().get();
}

int ServerRunner::max_threads() const {
  int threads = options_.threads + 1;  // the one thread that polls for the next call
  for (const auto& l : limiters_) threads += l->capacity();
  return threads;
}

void ServerRunner::OnShutdown(std::function<void()> fn) { on_shutdown_.push_back(std::move(fn)); }

absl::Status ServerRunner::Start() {
  if (options_.metrics_tls_cert_file.empty() && options_.metrics_tls_key_file.empty()) {
    try {
      exposer_ = std::make_unique<prometheus::Exposer>(options_.metrics_address);
    } catch (const std::exception& e) {
      return absl::UnavailableError(
          absl::StrCat("cannot serve metrics on ", options_.metrics_address, ": ", e.what()));
    }
    exposer_->RegisterCollectable(registry_);
    std::vector<int> metric_ports = exposer_->GetListeningPorts();
    metrics_port_ = metric_ports.empty() ? 0 : metric_ports.front();
  } else {
    absl::StatusOr<std::unique_ptr<MetricsTlsServer>> https = MetricsTlsServer::Start(
        options_.metrics_address, options_.metrics_tls_cert_file, options_.metrics_tls_key_file, registry_);
    if (!https.ok()) return https.status();
    metrics_tls_ = std::move(*https);
    metrics_port_ = metrics_tls_->port();
  }

  prometheus::BuildGauge()
      .Name("ferry_build_info")
      .Help("Always 1; labels tell the service and version.")
      .Register(*registry_)
      .Add({{"service", options_.service_name}, {"version", "0.1.0"}})
      .Set(1);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  // Reflection streams hold threads like ours (ReflectionStreamLimit); its
  // capacity joins the thread quota below.
  limiters_.push_back(std::make_unique<StreamLimiter>(StreamLimit{.service = options_.service_name,
                                                                  .rpc = "ServerReflectionInfo",
                                                                  .max_streams = options_.max_streams,
                                                                  .reserved_for_services = 0},
                                                      registry_.get()));
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<ReflectionStreamLimit>(limiters_.back().get()));
  grpc::ServerBuilder builder;
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  grpc::ResourceQuota quota(absl::StrCat("ferry-", options_.service_name));
  // A synchronous server runs each call on a thread of this quota and
  // refuses a call with RESOURCE_EXHAUSTED "Server Threadpool Exhausted" when
  // none is left; streams past their limiter's cap end at once, so they can
  // hold at most the limiters' capacity and `threads` stay for unary calls.
  quota.SetMaxThreads(max_threads());
  builder.SetResourceQuota(quota);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                             static_cast<int>(absl::ToInt64Milliseconds(options_.keepalive_time)));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             static_cast<int>(absl::ToInt64Milliseconds(options_.keepalive_timeout)));
  // Keep pinging a connection whose streams are idle (a watch with nothing
  // to send), so a vanished peer is found and its slot freed.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // Keep idle handler threads polling instead of exiting: with gRPC's default
  // (at most 2 pollers) a synchronous server under concurrent calls creates
  // and destroys a thread for nearly every call.
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, options_.threads);
  if (options_.tls->plaintext()) {
    logging::Warn("TLS is off (--insecure-plaintext): every call and every peer is unauthenticated plaintext; "
                  "for development only",
                  {{"grpc_address", options_.grpc_address}});
  }
  builder.AddListeningPort(options_.grpc_address, options_.tls->ServerCredentials(), &grpc_port_);
  for (grpc::Service* s : services_) builder.RegisterService(s);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || grpc_port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot serve gRPC on ", options_.grpc_address));
  }
  server_->GetHealthCheckService()->SetServingStatus(true);
  if (!options_.port_file.empty()) {
    absl::Status written = WritePortFile(options_.port_file, grpc_port_, metrics_port_);
    if (!written.ok()) return written;
  }
  logging::Info("serving", {{"grpc_port", grpc_port_},
                            {"metrics_port", metrics_port_},
                            {"grpc_address", options_.grpc_address},
                            {"tls", options_.tls->plaintext() ? "off" : "on"},
                            {"metrics_tls", options_.metrics_tls_cert_file.empty() ? "off" : "on"},
                            {"threads", options_.threads},
                            {"max_threads", max_threads()},
                            {"max_streams", options_.max_streams},
                            {"reserved_service_streams", options_.reserved_service_streams}});
  return absl::OkStatus();
}

void ServerRunner::Shutdown() {
  if (stopped_ || server_ == nullptr) return;
  stopped_ = true;
  server_->GetHealthCheckService()->SetServingStatus(false);
  for (auto& fn : on_shutdown_) fn();
  absl::Time started = absl::Now();
  server_->Shutdown(absl::ToChronoTime(started + options_.drain_timeout));
  server_->Wait();
  logging::Info("stopped", {{"drain_ms", absl::ToInt64Milliseconds(absl::Now() - started)}});
}

void BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int WaitForTerminationSignal(const std::function<void()>& on_hangup) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  while (true) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig != SIGHUP) return sig;
    if (on_hangup) on_hangup();
  }
}

}  // namespace ferry::server
