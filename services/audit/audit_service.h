#pragma once

#include "ferry/v1/audit.grpc.pb.h"

namespace ferry::audit {

// gRPC handlers of ferry.v1.Audit. Every RPC returns UNIMPLEMENTED until
// the audit issue lands; the contract is served and visible over reflection.
class AuditService final : public v1::Audit::Service {};

}  // namespace ferry::audit
