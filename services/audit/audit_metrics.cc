#include "services/audit/audit_metrics.h"

namespace ferry::audit {

AuditMetrics::AuditMetrics(prometheus::Registry& registry)
    : appended_(prometheus::BuildCounter()
                    .Name("ferry_audit_events_appended_total")
                    .Help("Events appended to the audit chain, by action (duplicates not counted).")
                    .Register(registry)),
      verifications_(prometheus::BuildCounter()
                         .Name("ferry_audit_chain_verifications_total")
                         .Help("Chain verifications (VerifyChain and pre-checkpoint checks), by result.")
                         .Register(registry)),
      checkpoint_refusals_(prometheus::BuildCounter()
                               .Name("ferry_audit_checkpoint_refusals_total")
                               .Help("Checkpoints not signed because the history contradicts an earlier "
                                     "checkpoint, the witness, or does not verify.")
                               .Register(registry)
                               .Add({})),
      append_latency_(prometheus::BuildHistogram()
                          .Name("ferry_audit_append_latency_seconds")
                          .Help("Time from receiving an Append or AppendBatch to its answer, once durable.")
                          .Register(registry)
                          .Add({}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
                                                                           0.05, 0.1, 0.2, 0.5, 1, 2, 5})) {
  for (const char* result : {"ok", "broken", "error"}) verifications_.Add({{"result", result}});
}

void AuditMetrics::CountAppended(v1::AuditAction action) {
  appended_.Add({{"action", v1::AuditAction_Name(action)}}).Increment();
}

void AuditMetrics::CountVerification(const std::string& result) {
  verifications_.Add({{"result", result}}).Increment();
}

void AuditMetrics::CountCheckpointRefused() { checkpoint_refusals_.Increment(); }

void AuditMetrics::ObserveAppendLatency(absl::Duration latency) {
  append_latency_.Observe(absl::ToDoubleSeconds(latency));
}

}  // namespace ferry::audit
