#include "common/server/reflection_stream_limit.h"

#include <cstring>
#include <optional>

#include <grpcpp/server_context.h>

#include "common/logging/logger.h"

namespace ferry::server {
namespace {

// Holds the stream's slot for the life of the call (interceptors are
// destroyed when the call ends), or cancels the call when none is left.
class SlotInterceptor final : public grpc::experimental::Interceptor {
 public:
  SlotInterceptor(grpc::experimental::ServerRpcInfo* info, StreamLimiter* limiter) : info_(info), limiter_(limiter) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      absl::StatusOr<StreamLimiter::Slot> slot = limiter_->Acquire(false);
      if (slot.ok()) {
        slot_.emplace(std::move(*slot));
      } else {
        logging::Warn("reflection stream refused", {{"error", std::string(slot.status().message())}});
        info_->server_context()->TryCancel();
      }
    }
    methods->Proceed();
  }

 private:
  grpc::experimental::ServerRpcInfo* info_;
  StreamLimiter* limiter_;
  std::optional<StreamLimiter::Slot> slot_;
};

}  // namespace

grpc::experimental::Interceptor* ReflectionStreamLimit::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  if (std::strcmp(info->method(), kReflectionStreamMethod) != 0) return nullptr;
  return new SlotInterceptor(info, limiter_);
}

}  // namespace ferry::server
