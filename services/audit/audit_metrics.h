#pragma once

#include <string>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "absl/time/time.h"
#include "ferry/v1/audit.pb.h"

namespace ferry::audit {

// The audit service's Prometheus metrics. Thread-safe.
//   ferry_audit_events_appended_total{action}
//   ferry_audit_chain_verifications_total{result="ok"|"broken"|"error"}
//   ferry_audit_checkpoint_refusals_total (MakeCheckpoint refused to sign)
//   ferry_audit_append_latency_seconds (one Append or AppendBatch call)
class AuditMetrics {
 public:
  explicit AuditMetrics(prometheus::Registry& registry);

  void CountAppended(v1::AuditAction action);
  void CountVerification(const std::string& result);
  void CountCheckpointRefused();
  void ObserveAppendLatency(absl::Duration latency);

 private:
  prometheus::Family<prometheus::Counter>& appended_;
  prometheus::Family<prometheus::Counter>& verifications_;
  prometheus::Counter& checkpoint_refusals_;
  prometheus::Histogram& append_latency_;
};

}  // namespace ferry::audit
