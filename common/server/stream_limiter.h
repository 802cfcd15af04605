#pragma once

#include <functional>
#include <string>

#include <grpcpp/server_context.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "common/concurrency/mutex.h"

namespace ferry::server {

// How many streams of one server-streaming RPC may be open at once.
struct StreamLimit {
  std::string service;  // e.g. "repo-watcher", for the message and metrics
  std::string rpc;      // e.g. "WatchRevisions"
  // Open to any caller (--max-streams).
  int max_streams = 16;
  // Further slots only for Ferry services, callers whose verified client
  // certificate names one (--reserved-service-streams): a stranger who fills
  // max_streams never locks out the planner or the deployer.
  int reserved_for_services = 4;
};

// Caps the concurrent streams of one server-streaming RPC. The gRPC server is
// synchronous: each open stream holds one of its threads for as long as it is
// open, so without a cap a caller with a few idle streams takes every thread
// and unary calls fail with "Server Threadpool Exhausted". ServerRunner makes
// every limiter's capacity part of the server's thread limit, above the
// threads kept for unary calls (--threads).
//
// Each streaming RPC has a limiter of its own, so watchers cannot starve
// ReadContent nor Tail starve Export. Ferry services, proved by their client
// certificate (auth::PeerServiceOf: the spiffe://ferry/<service> SAN of a
// certificate the TLS handshake verified against the suite's CA), may use
// reserved_for_services further slots once max_streams are taken; nobody
// else can, whatever metadata they send. Without TLS (--insecure-plaintext)
// no caller is proved a service, so none gets the reserve.
//
// Thread-safe.
class StreamLimiter {
 public:
  // Holds one slot while alive; movable, releases on destruction.
  class Slot {
   public:
    Slot(Slot&& other) noexcept : owner_(other.owner_), reserved_(other.reserved_) { other.owner_ = nullptr; }
    Slot& operator=(Slot&& other) noexcept;
    Slot(const Slot&) = delete;
    ~Slot();
    // A slot of no limiter (see AcquireStream).
    static Slot Unlimited() { return Slot(nullptr, false); }

   private:
    friend class StreamLimiter;
    Slot(StreamLimiter* owner, bool reserved) : owner_(owner), reserved_(reserved) {}
    StreamLimiter* owner_;
    bool reserved_;
  };

  // `registry` (may be null) gets ferry_grpc_streams_open{service,rpc} and
  // ferry_grpc_streams_refused_total{service,rpc}.
  explicit StreamLimiter(StreamLimit limit, prometheus::Registry* registry = nullptr);
  StreamLimiter(const StreamLimiter&) = delete;
  StreamLimiter& operator=(const StreamLimiter&) = delete;

  // A slot for a new stream, or RESOURCE_EXHAUSTED naming the RPC, the limit
  // and the flag that sets it. Nothing waits.
  absl::StatusOr<Slot> Acquire(bool service_caller);
  // The same for a gRPC call: a service caller is one whose verified client
  // certificate names a Ferry service (IsServiceCaller).
  absl::StatusOr<Slot> Acquire(const grpc::ServerContext& context);

  // Every slot: max_streams + reserved_for_services.
  int capacity() const { return limit_.max_streams + limit_.reserved_for_services; }
  int open() const;

 private:
  void Release(bool reserved);

  const StreamLimit limit_;
  prometheus::Gauge* open_gauge_ = nullptr;
  prometheus::Counter* refused_ = nullptr;
  mutable Mutex mu_;
  int general_ ABSL_GUARDED_BY(mu_) = 0;   // slots of max_streams in use
  int reserved_ ABSL_GUARDED_BY(mu_) = 0;  // slots of reserved_for_services in use
};

// A slot of `limiter` for the call, or an unlimited one when `limiter` is
// null (a service built without a runner, in a test).
absl::StatusOr<StreamLimiter::Slot> AcquireStream(StreamLimiter* limiter, const grpc::ServerContext& context);

// True when the call's peer presented a client certificate, verified against
// the suite's CA, that names a Ferry service (auth::PeerServiceOf).
bool IsServiceCaller(const grpc::ServerContext& context);

// For clients: true when `status` is a StreamLimiter's refusal (the server
// had no stream slot left), a reason to retry after a short wait rather than
// to fail the work.
bool IsStreamLimitRefusal(const grpc::Status& status);

// For clients of short streams (ReadContent): runs `call` until it returns
// anything but a stream-limit refusal, at most `attempts` times, waiting
// 100 ms, 200 ms, 400 ms, ... between tries.
grpc::Status RetryStreamLimitRefusals(const std::function<grpc::Status()>& call, int attempts = 6);

}  // namespace ferry::server
