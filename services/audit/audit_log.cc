#include "services/audit/audit_log.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <google/protobuf/util/time_util.h>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/api/page_size.h"
#include "common/concurrency/await_callback.h"
#include "common/logging/logger.h"
#include "common/outbox/audit_limits.h"
#include "common/status/nul_free.h"
#include "common/status/status_macros.h"
#include "common/crypto/sha256.h"
#include "services/audit/chain_hasher.h"
#include "services/audit/event_encoder.h"

namespace ferry::audit {
namespace {

using google::protobuf::util::TimeUtil;

constexpr size_t kMaxIdLength = outbox::kMaxAuditIdBytes;
constexpr size_t kMaxMessageLength = outbox::kMaxAuditMessageBytes;
constexpr size_t kMaxDetailsBytes = outbox::kMaxAuditDetailsBytes;
constexpr int kTailPage = 500;
constexpr int kExportPage = 1000;

absl::Status Invalid(const std::string& field, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

absl::Status CheckLength(const std::string& field, const std::string& value, size_t max) {
  if (value.size() > max) return Invalid(field, absl::StrCat("longer than ", max, " bytes"));
  if (value.find('\0') != std::string::npos) return Invalid(field, kNulInText);
  return absl::OkStatus();
}

absl::Status CheckTimestamp(const std::string& field, const google::protobuf::Timestamp& t) {
  if (t.seconds() < TimeUtil::kTimestampMinSeconds || t.seconds() > TimeUtil::kTimestampMaxSeconds ||
      t.nanos() < 0 || t.nanos() > 999999999) {
    return Invalid(field, "not a valid timestamp (years 0001 to 9999)");
  }
  return absl::OkStatus();
}

// Every value has a kind and every number is finite (JSON has no NaN).
bool WellFormed(const google::protobuf::Value& v) {
  switch (v.kind_case()) {
    case google::protobuf::Value::KIND_NOT_SET:
      return false;
    case google::protobuf::Value::kNumberValue:
      return std::isfinite(v.number_value());
    case google::protobuf::Value::kStructValue:
      for (const auto& [k, f] : v.struct_value().fields()) {
        if (!WellFormed(f)) return false;
      }
      return true;
    case google::protobuf::Value::kListValue:
      for (const auto& f : v.list_value().values()) {
        if (!WellFormed(f)) return false;
      }
      return true;
    default:
      return true;
  }
}

// What is chained: the caller's fields, times at microsecond precision (what
// PostgreSQL keeps), and no empty subject (which a stored row cannot tell
// from an absent one).
void Normalize(v1::Event& e) {
  e.clear_sequence();
  e.clear_append_time();
  e.clear_prev_hash();
  e.clear_hash();
  if (e.has_time()) *e.mutable_time() = TimeUtil::MicrosecondsToTimestamp(TimeUtil::TimestampToMicroseconds(e.time()));
  if (e.has_subject() && e.subject().ByteSizeLong() == 0) e.clear_subject();
}

std::string Fingerprint(const v1::QueryRequest& request) {
  std::string bytes;
  google::protobuf::io::StringOutputStream stream(&bytes);
  {
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    request.filter().SerializeToCodedStream(&coded);
  }
  bytes += request.order() == v1::SORT_ORDER_DESCENDING ? "|desc" : "|asc";
  return HexEncode(Sha256(bytes)).substr(0, 16);
}

std::string EncodePageToken(const std::string& fingerprint, int64_t sequence) {
  std::string token;
  absl::WebSafeBase64Escape(absl::StrCat("v1.", fingerprint, ".", sequence), &token);
  return token;
}

absl::StatusOr<int64_t> DecodePageToken(const std::string& token, const std::string& fingerprint) {
  std::string raw;
  std::vector<std::string> parts;
  if (absl::WebSafeBase64Unescape(token, &raw)) parts = absl::StrSplit(raw, '.');
  int64_t sequence = 0;
  if (parts.size() != 3 || parts[0] != "v1" || !absl::SimpleAtoi(parts[2], &sequence) || sequence < 0) {
    return Invalid("page_token", "not a token returned by Query");
  }
  if (parts[1] != fingerprint) {
    return Invalid("page_token", "was issued for a different filter or order; keep them unchanged while paging");
  }
  return sequence;
}

}  // namespace

absl::Status ValidateEvent(const v1::Event& e, const std::string& field) {
  if (e.action() == v1::AUDIT_ACTION_UNSPECIFIED) return Invalid(field + ".action", "required");
  if (const size_t bytes = e.ByteSizeLong(); bytes > outbox::kMaxAuditEventBytes) {
    return Invalid(field, absl::StrCat("is ", bytes, " bytes serialized, larger than the ", outbox::kMaxAuditEventBytes,
                                       " bytes the audit log takes per event"));
  }
  if (!v1::AuditAction_IsValid(e.action())) {
    return Invalid(field + ".action", absl::StrCat("unknown action ", static_cast<int>(e.action())));
  }
  if (e.service().empty()) return Invalid(field + ".service", "required");
  if (e.idempotency_key().empty()) return Invalid(field + ".idempotency_key", "required");
  if (e.actor().id().empty()) return Invalid(field + ".actor.id", "required (\"ferry\" for automated actions)");
  if (!v1::ActorKind_IsValid(e.actor().kind())) {
    return Invalid(field + ".actor.kind", absl::StrCat("unknown kind ", static_cast<int>(e.actor().kind())));
  }
  for (const auto& [name, value] : std::vector<std::pair<const char*, const std::string*>>{
           {".service", &e.service()},
           {".idempotency_key", &e.idempotency_key()},
           {".actor.id", &e.actor().id()},
           {".actor.display_name", &e.actor().display_name()},
           {".subject.repository_id", &e.subject().repository_id()},
           {".subject.application_id", &e.subject().application_id()},
           {".subject.environment_id", &e.subject().environment_id()},
           {".subject.plan_id", &e.subject().plan_id()},
           {".subject.deployment_id", &e.subject().deployment_id()},
           {".subject.commit_sha", &e.subject().commit_sha()},
           {".subject.ref", &e.subject().ref()}}) {
    absl::Status s = CheckLength(field + name, *value, kMaxIdLength);
    if (!s.ok()) return s;
  }
  absl::Status s = CheckLength(field + ".message", e.message(), kMaxMessageLength);
  if (!s.ok()) return s;
  if (e.has_time()) {
    s = CheckTimestamp(field + ".time", e.time());
    if (!s.ok()) return s;
  }
  if (e.has_details()) {
    if (e.details().ByteSizeLong() > kMaxDetailsBytes) {
      return Invalid(field + ".details", absl::StrCat("larger than ", kMaxDetailsBytes, " bytes"));
    }
    if (absl::Status nul = RejectNulInStrings(e.details()); !nul.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".details.", nul.message()));
    }
    for (const auto& [k, v] : e.details().fields()) {
      if (!WellFormed(v)) {
        return Invalid(field + ".details", absl::StrCat("value of '", k, "': every value must be set and numbers finite"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateFilter(const v1::EventFilter& f, const std::string& field) {
  if (f.has_start_time()) {
    absl::Status s = CheckTimestamp(field + ".start_time", f.start_time());
    if (!s.ok()) return s;
  }
  if (f.has_end_time()) {
    absl::Status s = CheckTimestamp(field + ".end_time", f.end_time());
    if (!s.ok()) return s;
  }
  if (f.has_start_time() && f.has_end_time() && f.end_time() < f.start_time()) {
    return Invalid(field + ".end_time",
                   absl::StrCat("is before ", field, ".start_time (", TimeUtil::ToString(f.end_time()), " < ",
                                TimeUtil::ToString(f.start_time()), ")"));
  }
  if (absl::Status nul = RejectNulInStrings(f); !nul.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".", nul.message()));
  }
  for (int i = 0; i < f.actions_size(); ++i) {
    int a = f.actions(i);
    if (a == v1::AUDIT_ACTION_UNSPECIFIED || !v1::AuditAction_IsValid(a)) {
      return Invalid(absl::StrCat(field, ".actions[", i, "]"), absl::StrCat("unknown action ", a));
    }
  }
  return absl::OkStatus();
}

AuditLog::AuditLog(EventStore& store, Appender& appender, const CheckpointSigner& signer, const Clock& clock,
                   AuditMetrics* metrics, ChainVerifierOptions verify_options, CheckpointTrust trust)
    : store_(store),
      appender_(appender),
      signer_(signer),
      clock_(clock),
      metrics_(metrics),
      verifier_(store, verify_options),
      own_keys_(trust.keys == nullptr ? std::make_unique<CheckpointKeyRing>(signer) : nullptr),
      keys_(trust.keys == nullptr ? *own_keys_ : *trust.keys),
      witness_(trust.witness) {}

void AuditLog::AppendAsync(const std::string& caller_service, v1::Event event,
                           std::function<void(absl::StatusOr<AppendResult>)> done) {
  event.set_service(caller_service);  // the caller's identity, never the request's
  absl::Status valid = ValidateEvent(event, "event");
  if (!valid.ok()) return done(valid);
  Normalize(event);
  std::vector<v1::Event> one;
  one.push_back(std::move(event));
  AppendNormalized(std::move(one), [done = std::move(done)](Appender::Result results) {
    if (!results.ok()) return done(results.status());
    done(std::move(results->front()));
  });
}

void AuditLog::AppendBatchAsync(const std::string& caller_service, std::vector<v1::Event> events,
                                Appender::Done done) {
  if (events.size() > static_cast<size_t>(kMaxBatchSize)) {
    return done(Invalid("events", absl::StrCat("at most ", kMaxBatchSize, " per batch, got ", events.size())));
  }
  for (size_t i = 0; i < events.size(); ++i) {
    events[i].set_service(caller_service);  // the caller's identity, never the request's
    absl::Status valid = ValidateEvent(events[i], absl::StrCat("events[", i, "]"));
    if (!valid.ok()) return done(valid);
  }
  if (events.empty()) return done(std::vector<AppendResult>());
  for (v1::Event& e : events) Normalize(e);
  AppendNormalized(std::move(events), std::move(done));
}

void AuditLog::AppendNormalized(std::vector<v1::Event> normalized, Appender::Done done) {
  const absl::Time started = clock_.Now();
  appender_.AppendAsync(std::move(normalized), [this, started, done = std::move(done)](Appender::Result results) {
    if (metrics_ != nullptr) metrics_->ObserveAppendLatency(clock_.Now() - started);
    done(std::move(results));
  });
}

absl::StatusOr<AppendResult> AuditLog::Append(const std::string& caller_service, const v1::Event& event) {
  return concurrency::AwaitCallback<absl::StatusOr<AppendResult>>(
      [&](std::function<void(absl::StatusOr<AppendResult>)> done) {
        AppendAsync(caller_service, event, std::move(done));
      });
}

absl::StatusOr<std::vector<AppendResult>> AuditLog::AppendBatch(const std::string& caller_service,
                                                                const std::vector<v1::Event>& events) {
  return concurrency::AwaitCallback<Appender::Result>(
      [&](Appender::Done done) { AppendBatchAsync(caller_service, events, std::move(done)); });
}

absl::StatusOr<v1::QueryResponse> AuditLog::Query(const v1::QueryRequest& request) {
  absl::Status valid = ValidateFilter(request.filter(), "filter");
  if (!valid.ok()) return valid;
  if (!v1::SortOrder_IsValid(request.order())) {
    return Invalid("order", absl::StrCat("unknown order ", static_cast<int>(request.order())));
  }
  absl::StatusOr<int> page_size = api::PageSize(request.page_size());
  if (!page_size.ok()) return page_size.status();
  EventQuery q;
  q.filter = request.filter();
  q.descending = request.order() == v1::SORT_ORDER_DESCENDING;
  const int limit = *page_size;
  q.limit = limit + 1;
  const std::string fingerprint = Fingerprint(request);
  if (!request.page_token().empty()) {
    absl::StatusOr<int64_t> cursor = DecodePageToken(request.page_token(), fingerprint);
    if (!cursor.ok()) return cursor.status();
    if (q.descending) {
      q.before = *cursor;
    } else {
      q.after = *cursor;
    }
  }
  absl::StatusOr<std::vector<v1::Event>> events = store_.Query(q);
  if (!events.ok()) return events.status();
  v1::QueryResponse out;
  bool more = events->size() > static_cast<size_t>(limit);
  if (more) events->pop_back();
  // A page also ends before kMaxQueryResponseBytes, so that a client with
  // gRPC's default 4 MiB receive limit can read every page.
  size_t bytes = 0;
  for (v1::Event& e : *events) {
    const size_t size = e.ByteSizeLong();
    if (out.events_size() > 0 && bytes + size > kMaxQueryResponseBytes) {
      more = true;
      break;
    }
    bytes += size;
    *out.add_events() = std::move(e);
  }
  if (more) out.set_next_page_token(EncodePageToken(fingerprint, out.events().rbegin()->sequence()));
  return out;
}

absl::Status AuditLog::Tail(const v1::TailRequest& request, const std::function<bool(const v1::Event&)>& send,
                            const std::function<bool()>& cancelled) {
  absl::Status valid = ValidateFilter(request.filter(), "filter");
  if (!valid.ok()) return valid;
  if (request.after_sequence() < 0) return Invalid("after_sequence", "must not be negative");
  int64_t cursor = request.after_sequence();
  if (request.from_head()) {
    absl::StatusOr<ChainHead> last = store_.LastEvent();
    if (!last.ok()) return last.status();
    cursor = last->sequence;
  }
  for (;;) {
    const uint64_t generation = appender_.wake_generation();
    if (stopping_.load()) return absl::UnavailableError("the audit service is shutting down; resume the tail");
    if (cancelled()) return absl::CancelledError("tail cancelled by the client");
    const int64_t seen = appender_.committed_sequence();
    EventQuery q;
    q.filter = request.filter();
    q.after = cursor;
    q.limit = kTailPage;
    absl::StatusOr<std::vector<v1::Event>> events = store_.Query(q);
    if (!events.ok()) return events.status();
    for (const v1::Event& e : *events) {
      if (!send(e)) return absl::CancelledError("tail cancelled by the client");
      cursor = e.sequence();
    }
    if (events->size() == static_cast<size_t>(kTailPage)) continue;
    appender_.WaitForCommitAfter(std::max(cursor, seen), absl::Seconds(1), generation);
  }
}

absl::Status AuditLog::Export(const v1::ExportRequest& request, const std::function<bool(const std::string&)>& send) {
  absl::Status valid = ValidateFilter(request.filter(), "filter");
  if (!valid.ok()) return valid;
  if (request.from_sequence() < 0) return Invalid("from_sequence", "must not be negative");
  if (request.to_sequence() < 0) return Invalid("to_sequence", "must not be negative");
  int64_t to = request.to_sequence();
  if (to == 0) {
    absl::StatusOr<ChainHead> last = store_.LastEvent();
    if (!last.ok()) return last.status();
    to = last->sequence;
  }
  const int64_t from = std::max<int64_t>(1, request.from_sequence());
  if (to != 0 && to < from) return Invalid("to_sequence", "is before from_sequence");
  EventQuery q;
  q.filter = request.filter();
  q.after = from - 1;
  q.before = to + 1;
  q.limit = kExportPage;
  for (;;) {
    if (stopping_.load()) return absl::UnavailableError("the audit service is shutting down");
    absl::StatusOr<std::vector<v1::Event>> events = store_.Query(q);
    if (!events.ok()) return events.status();
    for (const v1::Event& e : *events) {
      absl::StatusOr<std::string> line = ExportLine(e);
      if (!line.ok()) return absl::DataLossError(absl::StrCat("event ", e.sequence(), ": ", line.status().message()));
      if (!send(*line)) return absl::CancelledError("export cancelled by the client");
      q.after = e.sequence();
    }
    if (events->size() < static_cast<size_t>(kExportPage)) return absl::OkStatus();
  }
}

absl::StatusOr<v1::VerifyChainResponse> AuditLog::VerifyChain(const v1::VerifyChainRequest& request) {
  auto count = [&](const std::string& result) {
    if (metrics_ != nullptr) metrics_->CountVerification(result);
  };
  if (request.from_sequence() < 0) return Invalid("from_sequence", "must not be negative");
  if (request.to_sequence() < 0) return Invalid("to_sequence", "must not be negative");
  absl::StatusOr<ChainHead> last = store_.LastEvent();
  absl::StatusOr<ChainHead> stored_head = last.ok() ? store_.StoredHead() : last;
  if (!stored_head.ok()) {
    count("error");
    return stored_head.status();
  }
  // The last event as far as appends know: deleting the newest rows is a break too.
  const int64_t head = std::max(last->sequence, stored_head->sequence);
  const int64_t from = std::max<int64_t>(1, request.from_sequence());
  const int64_t to = request.to_sequence() == 0 ? head : request.to_sequence();
  if (to > head) return Invalid("to_sequence", absl::StrCat("is beyond the head of the chain (", head, ")"));
  v1::VerifyChainResponse out;
  out.set_from_sequence(from);
  out.set_to_sequence(to);
  out.set_ok(true);
  if (head == 0) {
    count("ok");
    return out;
  }
  if (from > to) return Invalid("from_sequence", absl::StrCat("is after to_sequence (", to, ")"));

  absl::StatusOr<std::vector<v1::Checkpoint>> checkpoints = store_.CheckpointsInRange(from, to);
  if (!checkpoints.ok()) {
    count("error");
    return checkpoints.status();
  }
  std::vector<v1::Checkpoint> witnessed;
  if (witness_ != nullptr) {
    // Up to the head, also what was witnessed beyond it (deleted newest events).
    absl::StatusOr<std::vector<v1::Checkpoint>> read =
        witness_->Read(from, to == head ? std::numeric_limits<int64_t>::max() : to);
    if (!read.ok()) {
      count("error");
      return read.status();
    }
    witnessed = std::move(*read);
  }
  std::optional<v1::Checkpoint> beyond_head;
  if (!witnessed.empty() && witnessed.back().sequence() > to) {
    beyond_head = witnessed.back();
    while (!witnessed.empty() && witnessed.back().sequence() > to) witnessed.pop_back();
  }
  std::map<int64_t, std::string> hash_at;
  for (const v1::Checkpoint& c : *checkpoints) hash_at[c.sequence()] = "";
  for (const v1::Checkpoint& c : witnessed) hash_at[c.sequence()] = "";
  std::optional<std::string> anchor;
  if (from == 1) anchor = ZeroHash();
  absl::Status scanned = verifier_.Verify(from, to, anchor, &out, &hash_at);
  if (!scanned.ok()) {
    count("error");
    return scanned;
  }
  if (out.ok() && to == head && stored_head->sequence == to && stored_head->hash != out.head_hash()) {
    out.set_ok(false);
    out.set_first_broken_sequence(to);
    out.set_reason(absl::StrCat("hash mismatch: event ", to, " differs from the chain head recorded at append (",
                                stored_head->hash, ")"));
  }
  const int64_t chain_ok_until = out.ok() ? to : out.first_broken_sequence() - 1;
  for (const v1::Checkpoint& c : *checkpoints) {
    if (c.sequence() > chain_ok_until) break;
    std::string why;
    if (absl::Status trusted = keys_.Verify(c); !trusted.ok()) {
      why = std::string(trusted.message());
    } else if (hash_at[c.sequence()] != c.head_hash()) {
      why = absl::StrCat("checkpoint mismatch: the signed checkpoint at ", c.sequence(), " has head_hash ",
                         c.head_hash(), " but the chain has ", hash_at[c.sequence()], " (history was rewritten)");
    }
    if (!why.empty()) {
      out.set_ok(false);
      out.set_first_broken_sequence(c.sequence());
      out.set_reason(why);
      break;
    }
    out.set_checkpoints_verified(out.checkpoints_verified() + 1);
  }
  // The witness: each witnessed checkpoint up to the first break must be
  // trusted, and the events must hash to it: the first one contradicted
  // names where the forgery ends, the last one that still matches bounds
  // where it begins. Failing that, each must still be in the database,
  // unchanged (a deleted checkpoint alone does not say which events changed).
  std::map<int64_t, const v1::Checkpoint*> stored;
  for (const v1::Checkpoint& c : *checkpoints) stored[c.sequence()] = &c;
  const int64_t until = out.ok() ? to : out.first_broken_sequence() - 1;
  int64_t last_matching = from - 1;
  int64_t broken = 0;
  std::string why;
  for (const v1::Checkpoint& w : witnessed) {
    if (w.sequence() > until) break;
    if (absl::Status trusted = keys_.Verify(w); !trusted.ok()) {
      broken = w.sequence();
      why = absl::StrCat("witness: ", trusted.message());
      break;
    }
    if (hash_at[w.sequence()] != w.head_hash()) {
      broken = w.sequence();
      why = absl::StrCat("witness mismatch: the witnessed checkpoint at ", w.sequence(), " has head_hash ",
                         w.head_hash(), " but the events hash to ", hash_at[w.sequence()],
                         ": history was rewritten in events ", last_matching + 1, " to ", w.sequence());
      break;
    }
    last_matching = w.sequence();
  }
  for (const v1::Checkpoint& w : witnessed) {
    if (w.sequence() > until || (broken != 0 && w.sequence() >= broken)) break;
    auto in_db = stored.find(w.sequence());
    if (in_db == stored.end() || in_db->second->head_hash() != w.head_hash() ||
        in_db->second->signature() != w.signature()) {
      if (broken == 0) {
        broken = w.sequence();
        why = absl::StrCat("witness: the witnessed checkpoint at ", w.sequence(),
                           in_db == stored.end() ? " is missing from the database"
                                                 : " differs from the database's checkpoint there");
      } else {
        absl::StrAppend(&why, "; the database has also lost or changed the witnessed checkpoint at ", w.sequence());
      }
      break;
    }
  }
  if (broken == 0 && out.ok() && beyond_head.has_value()) {
    broken = head + 1;
    why = absl::StrCat("witness: a checkpoint was witnessed at ", beyond_head->sequence(),
                       " but the chain ends at ", head, " (the newest events were deleted)");
  }
  if (broken != 0) {
    out.set_ok(false);
    out.set_first_broken_sequence(broken);
    out.set_reason(why);
  }
  if (!out.ok()) out.set_head_hash("");
  count(out.ok() ? "ok" : "broken");
  if (!out.ok()) {
    logging::Error("audit chain verification failed",
                   {{"first_broken_sequence", out.first_broken_sequence()}, {"reason", out.reason()}});
  }
  return out;
}

absl::StatusOr<v1::Checkpoint> AuditLog::GetCheckpoint(int64_t sequence) {
  if (sequence < 0) return Invalid("sequence", "must not be negative");
  absl::StatusOr<std::optional<v1::Checkpoint>> c = store_.LatestCheckpoint(sequence);
  if (!c.ok()) return c.status();
  if (!c->has_value()) {
    return absl::NotFoundError(sequence == 0 ? "no checkpoint has been signed yet"
                                             : absl::StrCat("no checkpoint at or before sequence ", sequence));
  }
  return **c;
}

absl::Status AuditLog::Refuse(const std::string& why) {
  if (metrics_ != nullptr) metrics_->CountCheckpointRefused();
  return absl::FailedPreconditionError(absl::StrCat("not signing: ", why));
}

absl::StatusOr<std::optional<v1::Checkpoint>> AuditLog::MakeCheckpoint() {
  MutexLock lock(&checkpoint_mu_);
  return MakeCheckpointLocked();
}

absl::StatusOr<std::optional<v1::Checkpoint>> AuditLog::MakeCheckpointLocked() {
  absl::StatusOr<ChainHead> last = store_.LastEvent();
  if (!last.ok()) return last.status();
  absl::StatusOr<std::optional<v1::Checkpoint>> previous = store_.LatestCheckpoint(0);
  if (!previous.ok()) return previous.status();
  // The checkpoints the history must still agree with: the newest stored
  // one, the newest witnessed one and the last one this log verified.
  std::vector<v1::Checkpoint> known;
  if (previous->has_value()) {
    if (absl::Status trusted = keys_.Verify(**previous); !trusted.ok()) return Refuse(std::string(trusted.message()));
    known.push_back(**previous);
  }
  std::optional<v1::Checkpoint> witnessed;
  if (witness_ != nullptr) {
    absl::StatusOr<std::optional<v1::Checkpoint>> w = witness_->Latest();
    if (!w.ok()) return w.status();
    witnessed = std::move(*w);
    if (witnessed.has_value()) {
      if (absl::Status trusted = keys_.Verify(*witnessed); !trusted.ok()) {
        return Refuse(absl::StrCat("witness: ", trusted.message()));
      }
      known.push_back(*witnessed);
    }
  }
  if (verified_.sequence() > 0) known.push_back(verified_);
  for (const v1::Checkpoint& k : known) {
    absl::StatusOr<std::optional<v1::Checkpoint>> in_db = store_.LatestCheckpoint(k.sequence());
    if (!in_db.ok()) return in_db.status();
    if (!in_db->has_value() || (*in_db)->sequence() != k.sequence()) {
      return Refuse(absl::StrCat("the checkpoint at ", k.sequence(), " (head_hash ", k.head_hash(),
                                 ") is missing from the database"));
    }
    if ((*in_db)->head_hash() != k.head_hash()) {
      return Refuse(absl::StrCat("the database's checkpoint at ", k.sequence(), " has head_hash ",
                                 (*in_db)->head_hash(), " but was signed with ", k.head_hash()));
    }
    if (k.sequence() > last->sequence) {
      return Refuse(absl::StrCat("the chain ends at ", last->sequence, ", before the checkpoint at ", k.sequence()));
    }
  }
  const int64_t after = previous->has_value() ? (*previous)->sequence() : 0;
  if (last->sequence <= after) {
    // Nothing new; a stored checkpoint the witness missed (its write failed) is written now.
    if (witness_ != nullptr && previous->has_value() &&
        (!witnessed.has_value() || witnessed->sequence() < after)) {
      RETURN_IF_ERROR(witness_->Write(**previous));
    }
    return std::optional<v1::Checkpoint>();
  }
  // Never sign over a chain that does not verify: from sequence 1 the first
  // time, then from the last checkpoint verified (re-hashing that event), and
  // the events must hash to every known checkpoint.
  std::map<int64_t, std::string> hash_at;
  for (const v1::Checkpoint& k : known) {
    if (k.sequence() >= verified_.sequence()) hash_at[k.sequence()] = "";
  }
  v1::VerifyChainResponse check;
  const int64_t from = std::max<int64_t>(1, verified_.sequence());
  std::optional<std::string> anchor;
  if (from == 1) anchor = ZeroHash();
  RETURN_IF_ERROR(verifier_.Verify(from, last->sequence, anchor, &check, &hash_at));
  if (metrics_ != nullptr) metrics_->CountVerification(check.ok() ? "ok" : "broken");
  if (!check.ok()) {
    return Refuse(absl::StrCat("the chain is broken at ", check.first_broken_sequence(), ": ", check.reason()));
  }
  for (const v1::Checkpoint& k : known) {
    if (k.sequence() < verified_.sequence()) continue;
    if (hash_at[k.sequence()] != k.head_hash()) {
      return Refuse(absl::StrCat("the events no longer hash to the signed checkpoint at ", k.sequence(), " (head_hash ",
                                 k.head_hash(), ", the events give ", hash_at[k.sequence()],
                                 "): history was rewritten"));
    }
  }
  if (check.head_hash() != last->hash) {
    return Refuse(absl::StrCat("the head moved while verifying: event ", last->sequence, " hashes to ",
                               check.head_hash(), ", the head said ", last->hash));
  }
  absl::StatusOr<std::string> signature = signer_.Sign(last->sequence, last->hash);
  if (!signature.ok()) return signature.status();
  v1::Checkpoint c;
  c.set_sequence(last->sequence);
  c.set_head_hash(last->hash);
  c.set_signature(*signature);
  c.set_public_key_id(signer_.public_key_id());
  c.set_algorithm(v1::SIGNING_ALGORITHM_ED25519);
  *c.mutable_create_time() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(clock_.Now()));
  absl::Status stored = store_.InsertCheckpoint(c);
  if (!stored.ok()) return stored;
  // Another replica may have stored its checkpoint at this sequence first
  // (the insert then does nothing): what is stored is what counts.
  absl::StatusOr<std::optional<v1::Checkpoint>> kept = store_.LatestCheckpoint(c.sequence());
  if (!kept.ok()) return kept.status();
  if (kept->has_value() && (*kept)->sequence() == c.sequence()) c = **kept;
  verified_ = c;
  // A failed witness write is retried at the next call (see above).
  if (witness_ != nullptr) RETURN_IF_ERROR(witness_->Write(c));
  return std::optional<v1::Checkpoint>(c);
}

void AuditLog::StopStreams() {
  stopping_.store(true);
  appender_.WakeAll();
}

}  // namespace ferry::audit
