#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace ferry {

// The one place where an absl::Status becomes a grpc::Status. The codes are
// numerically identical; the message is kept as is.
grpc::Status ToGrpcStatus(const absl::Status& status);

// The reverse, for clients of Ferry's own services.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace ferry
