#include "common/server/stream_limiter.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/auth/tls.h"

namespace ferry::server {

StreamLimiter::Slot::~Slot() {
  if (owner_ != nullptr) owner_->Release(reserved_);
}

StreamLimiter::Slot& StreamLimiter::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    if (owner_ != nullptr) owner_->Release(reserved_);
    owner_ = other.owner_;
    reserved_ = other.reserved_;
    other.owner_ = nullptr;
  }
  return *this;
}

StreamLimiter::StreamLimiter(StreamLimit limit, prometheus::Registry* registry) : limit_(std::move(limit)) {
  if (registry == nullptr) return;
  const std::map<std::string, std::string> labels = {{"service", limit_.service}, {"rpc", limit_.rpc}};
  open_gauge_ = &prometheus::BuildGauge()
                     .Name("ferry_grpc_streams_open")
                     .Help("Server streams open now, by RPC")
                     .Register(*registry)
                     .Add(labels);
  refused_ = &prometheus::BuildCounter()
                  .Name("ferry_grpc_streams_refused_total")
                  .Help("Server streams refused because the RPC's stream limit was reached")
                  .Register(*registry)
                  .Add(labels);
}

absl::StatusOr<StreamLimiter::Slot> StreamLimiter::Acquire(bool service_caller) {
  {
    MutexLock lock(&mu_);
    if (general_ < limit_.max_streams) {
      ++general_;
      if (open_gauge_ != nullptr) open_gauge_->Increment();
      return Slot(this, false);
    }
    if (service_caller && reserved_ < limit_.reserved_for_services) {
      ++reserved_;
      if (open_gauge_ != nullptr) open_gauge_->Increment();
      return Slot(this, true);
    }
  }
  if (refused_ != nullptr) refused_->Increment();
  return absl::ResourceExhaustedError(absl::StrCat(
      limit_.service, " ", limit_.rpc, ": ", limit_.max_streams,
      " streams are already open, the limit per RPC (--max-streams; ", limit_.reserved_for_services,
      " more are kept for Ferry services, --reserved-service-streams); close a stream or retry later"));
}

absl::StatusOr<StreamLimiter::Slot> StreamLimiter::Acquire(const grpc::ServerContext& context) {
  return Acquire(IsServiceCaller(context));
}

int StreamLimiter::open() const {
  MutexLock lock(&mu_);
  return general_ + reserved_;
}

void StreamLimiter::Release(bool reserved) {
  MutexLock lock(&mu_);
  (reserved ? reserved_ : general_)--;
  if (open_gauge_ != nullptr) open_gauge_->Decrement();
}

absl::StatusOr<StreamLimiter::Slot> AcquireStream(StreamLimiter* limiter, const grpc::ServerContext& context) {
  if (limiter == nullptr) return StreamLimiter::Slot::Unlimited();
  return limiter->Acquire(context);
}

bool IsStreamLimitRefusal(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
         absl::StrContains(status.error_message(), "(--max-streams;");
}

grpc::Status RetryStreamLimitRefusals(const std::function<grpc::Status()>& call, int attempts) {
  absl::Duration wait = absl::Milliseconds(100);
  for (int i = 1;; ++i) {
    grpc::Status status = call();
    if (i >= attempts || !IsStreamLimitRefusal(status)) return status;
    absl::SleepFor(wait);
    wait *= 2;
  }
}

bool IsServiceCaller(const grpc::ServerContext& context) { return !auth::PeerServiceOf(context).empty(); }

}  // namespace ferry::server
