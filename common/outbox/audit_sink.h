#pragma once

#include <vector>

#include "absl/status/status.h"
#include "ferry/v1/audit.pb.h"

namespace ferry::outbox {

// Where an outbox delivers: the audit service (GrpcAuditSink) or a fake.
class AuditSink {
 public:
  virtual ~AuditSink() = default;
  // Appends `events` in order; must be idempotent on idempotency_key (the
  // audit service is). UNAVAILABLE/DEADLINE_EXCEEDED mean "retry later".
  virtual absl::Status AppendBatch(const std::vector<v1::Event>& events) = 0;
};

}  // namespace ferry::outbox
