#pragma once

#include <grpcpp/support/server_interceptor.h>

#include "common/server/stream_limiter.h"

namespace ferry::server {

// The server-reflection stream (grpc.reflection.v1alpha.ServerReflection/
// ServerReflectionInfo, used by grpcurl) is a bidirectional stream served by
// gRPC's own synchronous handler: each open one holds a server thread, so a
// caller with idle reflection streams could starve unary calls just as with
// Ferry's own streams. Its handler cannot take a StreamLimiter slot itself,
// so this interceptor does: past the limiter's capacity a new reflection
// stream is cancelled at once (the client sees CANCELLED, the refusal is
// counted in ferry_grpc_streams_refused_total{rpc="ServerReflectionInfo"}).
class ReflectionStreamLimit final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // `limiter` must outlive the server.
  explicit ReflectionStreamLimit(StreamLimiter* limiter) : limiter_(limiter) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override;

 private:
  StreamLimiter* limiter_;
};

// The reflection stream's full method name.
inline constexpr char kReflectionStreamMethod[] =
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

}  // namespace ferry::server
