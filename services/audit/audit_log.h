#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock/clock.h"
#include "ferry/v1/audit.pb.h"
#include "services/audit/appender.h"
#include "services/audit/audit_metrics.h"
#include "services/audit/chain_verifier.h"
#include "services/audit/checkpoint_key_ring.h"
#include "services/audit/checkpoint_signer.h"
#include "services/audit/checkpoint_witness.h"
#include "common/concurrency/mutex.h"
#include "services/audit/event_store.h"

namespace ferry::audit {

inline constexpr int kMaxBatchSize = 1000;
// A Query page ends before its events pass this many bytes (serialized),
// with a next_page_token, even below page_size.
inline constexpr size_t kMaxQueryResponseBytes = 3 << 20;

// What checkpoints are checked against, beyond the database.
struct CheckpointTrust {
  // The keys whose checkpoints verify; null: only the signer's.
  const CheckpointKeyRing* keys = nullptr;
  // Where every checkpoint is also written and checked against; may be null.
  const CheckpointWitness* witness = nullptr;
};

// The audit log's operations, free of gRPC: validation, appends, queries,
// tails, chain verification, checkpoints and export. Thread-safe.
// Every INVALID_ARGUMENT names the offending field.
class AuditLog {
 public:
  // `metrics` may be null. Every reference must outlive the log.
  AuditLog(EventStore& store, Appender& appender, const CheckpointSigner& signer, const Clock& clock,
           AuditMetrics* metrics, ChainVerifierOptions verify_options = {}, CheckpointTrust trust = {});

  // Validates, normalises and appends one event sent by the service
  // `caller_service` (the caller's authenticated identity), then calls `done`
  // once, on this thread when the event is invalid, else on the appender's
  // (see Appender::AppendAsync). `done` must not block.
  //
  // The stored event's `service` is always `caller_service`: whatever the
  // request's event.service said is overwritten (not refused: the outbox's
  // own field is informative only). Idempotency keys are unique per
  // (service, key), so they are namespaced by the caller too: one service
  // cannot pre-claim another's key and have that service's real event
  // dropped as a duplicate. An empty caller_service is INVALID_ARGUMENT
  // ("event.service: required").
  void AppendAsync(const std::string& caller_service, v1::Event event,
                   std::function<void(absl::StatusOr<AppendResult>)> done);
  // Validates every event first (nothing is appended if one is bad), then
  // appends them atomically and in order, as AppendAsync (each event's
  // service becomes `caller_service`). At most kMaxBatchSize.
  void AppendBatchAsync(const std::string& caller_service, std::vector<v1::Event> events, Appender::Done done);
  // The same, waiting for the answer.
  absl::StatusOr<AppendResult> Append(const std::string& caller_service, const v1::Event& event);
  absl::StatusOr<std::vector<AppendResult>> AppendBatch(const std::string& caller_service,
                                                        const std::vector<v1::Event>& events);

  // One page of matching events and the token of the next ("" on the last).
  absl::StatusOr<v1::QueryResponse> Query(const v1::QueryRequest& request);

  // Sends matching events after the cursor, then new ones as they commit,
  // until `send` returns false (CANCELLED), `cancelled` returns true
  // (CANCELLED) or StopStreams() (UNAVAILABLE). Never busy-waits: it sleeps
  // on the appender's commit signal (rechecking the database every second
  // for other replicas' appends).
  absl::Status Tail(const v1::TailRequest& request, const std::function<bool(const v1::Event&)>& send,
                    const std::function<bool()>& cancelled);

  // Streams matching events, ascending, as export JSON lines.
  absl::Status Export(const v1::ExportRequest& request, const std::function<bool(const std::string&)>& send);

  // Recomputes the chain over [from, to] (0 = 1 / the head) and checks the
  // stored checkpoints in range (signed by a trusted key, and head_hash
  // against the chain), and, with a witness, every witnessed checkpoint in
  // range (signed by a trusted key, present in the database with the same
  // head_hash, and the events hash to it). A broken chain is an OK status
  // with ok = false.
  absl::StatusOr<v1::VerifyChainResponse> VerifyChain(const v1::VerifyChainRequest& request);

  // The newest checkpoint at or before `sequence` (0 = the newest);
  // NOT_FOUND when none exists.
  absl::StatusOr<v1::Checkpoint> GetCheckpoint(int64_t sequence);

  // Signs and stores a checkpoint of the current head when it moved past the
  // newest checkpoint, then writes it to the witness. First checks the
  // history it builds on: the newest stored checkpoint is signed by a
  // trusted key; the newest witnessed checkpoint and the last one this log
  // signed are still in the database, unchanged; and the events hash to
  // every one of them and on to the head (from sequence 1 the first time,
  // then from the last checkpoint this log verified). nullopt when there was
  // nothing new. FAILED_PRECONDITION when any of that fails (nothing is
  // signed; counted in ferry_audit_checkpoint_refusals_total).
  absl::StatusOr<std::optional<v1::Checkpoint>> MakeCheckpoint();

  // Ends every Tail with UNAVAILABLE, promptly. Idempotent.
  void StopStreams();

 private:
  void AppendNormalized(std::vector<v1::Event> normalized, Appender::Done done);
  absl::StatusOr<std::optional<v1::Checkpoint>> MakeCheckpointLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(checkpoint_mu_);
  absl::Status Refuse(const std::string& why);

  EventStore& store_;
  Appender& appender_;
  const CheckpointSigner& signer_;
  const Clock& clock_;
  AuditMetrics* metrics_;
  const ChainVerifier verifier_;
  std::unique_ptr<CheckpointKeyRing> own_keys_;  // the signer's alone, when no key ring was given
  const CheckpointKeyRing& keys_;
  const CheckpointWitness* witness_;
  // One MakeCheckpoint at a time; what it verified last.
  Mutex checkpoint_mu_;
  // The last checkpoint this log signed or found verified (sequence 0: none yet).
  v1::Checkpoint verified_ ABSL_GUARDED_BY(checkpoint_mu_);
  std::atomic<bool> stopping_{false};
};

// Checks an event as given to Append; `field` prefixes error messages
// ("event", "events[3]").
absl::Status ValidateEvent(const v1::Event& event, const std::string& field);
// Checks a filter; `field` prefixes error messages ("filter").
absl::Status ValidateFilter(const v1::EventFilter& filter, const std::string& field);

}  // namespace ferry::audit
