#include "common/outbox/postgres_outbox_store.h"

#include <google/protobuf/util/time_util.h>

#include <pqxx/pqxx>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "common/outbox/audit_limits.h"
#include "common/postgres/pq_status.h"
#include "common/postgres/text_array.h"
#include "common/text/utf8.h"

namespace ferry::outbox {

PostgresOutboxStore::PostgresOutboxStore(postgres::ConnectionPool* pool, std::string schema, std::string service)
    : pool_(pool), schema_(std::move(schema)), service_(std::move(service)), prefix_("outbox_" + schema_ + "_") {
  // Table names come from the service's own constant schema name, never from
  // input; everything variable is a parameter.
  const std::string table = schema_ + ".outbox";
  // The forwarder is woken in this process once the transaction ends
  // (ConnectionPool::WakeAfterCommit), not by NOTIFY: issue #23.
  pool_->Prepare(prefix_ + "insert",
                 absl::StrCat("INSERT INTO ", table, " (idempotency_key, event) VALUES ($1, $2)"));
  // Several rows, inserted in the order given (ids ascending); their events
  // travel base64-encoded in a text array.
  pool_->Prepare(prefix_ + "insert_all",
                 absl::StrCat("INSERT INTO ", table, " (idempotency_key, event)"
                              " SELECT u.k, decode(u.v, 'base64')"
                              " FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(k, v, n) ORDER BY u.n"));
  pool_->Prepare(prefix_ + "unsent", absl::StrCat("SELECT id, event FROM ", table,
                                                  " WHERE sent_at IS NULL ORDER BY id LIMIT $1"));
  pool_->Prepare(prefix_ + "mark_sent",
                 absl::StrCat("UPDATE ", table, " SET sent_at = now() WHERE id = ANY($1::bigint[])"));
  pool_->Prepare(prefix_ + "failed", absl::StrCat("UPDATE ", table,
                                                  " SET attempts = attempts + 1, last_error = $2"
                                                  " WHERE id = ANY($1::bigint[])"));
  pool_->Prepare(prefix_ + "backlog", absl::StrCat("SELECT count(*) FROM ", table, " WHERE sent_at IS NULL"));
}

namespace {

std::string IdArray(const std::vector<int64_t>& ids) { return absl::StrCat("{", absl::StrJoin(ids, ","), "}"); }

// Valid UTF-8 without NUL (which PostgreSQL text, where the audit log keeps
// events, cannot store): both shown as \xNN.
std::string Clean(const std::string& s) {
  std::string out = text::SanitizeUtf8(s);
  if (out.find('\0') == std::string::npos) return out;
  return absl::StrReplaceAll(out, {{absl::string_view("\0", 1), "\\x00"}});
}

void SanitizeValue(google::protobuf::Value& v);

void SanitizeStruct(google::protobuf::Struct& s) {
  // Keys too: a map key is a proto3 string.
  google::protobuf::Struct clean;
  for (auto& [key, value] : *s.mutable_fields()) {
    SanitizeValue(value);
    (*clean.mutable_fields())[Clean(key)] = std::move(value);
  }
  s = std::move(clean);
}

void SanitizeValue(google::protobuf::Value& v) {
  if (v.has_string_value()) v.set_string_value(Clean(v.string_value()));
  if (v.has_struct_value()) SanitizeStruct(*v.mutable_struct_value());
  if (v.has_list_value()) {
    for (auto& item : *v.mutable_list_value()->mutable_values()) SanitizeValue(item);
  }
}

// Every string of an event made valid UTF-8 without NUL. Events quote input from Git
// (file names, parser messages); one invalid byte in a proto3 string makes
// the whole batch unparseable for the audit service, which would refuse it
// again at every retry.
void SanitizeEvent(v1::Event& e) {
  e.set_message(Clean(e.message()));
  e.set_idempotency_key(Clean(e.idempotency_key()));
  if (e.has_actor()) {
    e.mutable_actor()->set_id(Clean(e.actor().id()));
    e.mutable_actor()->set_display_name(Clean(e.actor().display_name()));
  }
  if (e.has_subject()) {
    v1::Subject* s = e.mutable_subject();
    const google::protobuf::Descriptor* d = s->GetDescriptor();
    const google::protobuf::Reflection* r = s->GetReflection();
    for (int i = 0; i < d->field_count(); ++i) {
      const google::protobuf::FieldDescriptor* f = d->field(i);
      if (f->type() != google::protobuf::FieldDescriptor::TYPE_STRING || f->is_repeated()) continue;
      r->SetString(s, f, Clean(r->GetString(*s, f)));
    }
  }
  if (e.has_details()) SanitizeStruct(*e.mutable_details());
}

}  // namespace

absl::StatusOr<OutboxStore::Row> PostgresOutboxStore::Prepare(v1::Event event) {
  if (event.idempotency_key().empty()) return absl::InvalidArgumentError("audit event: idempotency_key is required");
  if (event.action() == v1::AUDIT_ACTION_UNSPECIFIED) return absl::InvalidArgumentError("audit event: action is required");
  event.set_service(service_);
  SanitizeEvent(event);
  // Not TimeUtil::GetCurrentTime(): in this protobuf it has whole seconds.
  if (!event.has_time()) {
    *event.mutable_time() = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(absl::Now()));
  }
  if (!event.has_actor() || event.actor().id().empty()) event.mutable_actor()->set_id("ferry");
  // An identity is not cut: refusing it fails the caller's change with it,
  // instead of the change committing and its event being refused by audit.
  if (event.actor().id().size() > kMaxAuditIdBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("actor.id: longer than ", kMaxAuditIdBytes, " bytes, which the audit log does not take"));
  }
  // Free text the audit service would refuse as too long is cut to fit, so
  // that a long comment or reason does not cost the event its place in the
  // log (the full text stays with the record it describes).
  event.set_message(FitText(event.message(), kMaxAuditMessageBytes));
  if (event.has_actor()) event.mutable_actor()->set_display_name(FitText(event.actor().display_name(), kMaxAuditIdBytes));
  if (event.has_subject()) event.mutable_subject()->set_ref(FitText(event.subject().ref(), kMaxAuditIdBytes));
  return Row{schema_ + ".outbox", NotifyChannel(schema_), event.idempotency_key(), event.SerializeAsString()};
}

absl::Status PostgresOutboxStore::Enqueue(pqxx::work& txn, v1::Event event) {
  absl::StatusOr<Row> row = Prepare(std::move(event));
  if (!row.ok()) return row.status();
  try {
    txn.exec_prepared0(prefix_ + "insert", row->idempotency_key, pqxx::binarystring(row->event));
  } catch (const std::exception& e) {
    return postgres::StatusFromException(e, "enqueue audit event");
  }
  pool_->WakeAfterCommit(row->channel);
  return absl::OkStatus();
}

absl::Status PostgresOutboxStore::EnqueueAll(pqxx::work& txn, std::vector<v1::Event> events) {
  if (events.empty()) return absl::OkStatus();
  if (events.size() == 1) return Enqueue(txn, std::move(events.front()));
  std::vector<std::string> keys, bodies;
  keys.reserve(events.size());
  bodies.reserve(events.size());
  std::string channel;
  for (v1::Event& e : events) {
    absl::StatusOr<Row> row = Prepare(std::move(e));
    if (!row.ok()) return row.status();
    keys.push_back(std::move(row->idempotency_key));
    bodies.push_back(absl::Base64Escape(row->event));
    channel = row->channel;
  }
  try {
    txn.exec_prepared0(prefix_ + "insert_all", postgres::TextArray(keys), postgres::TextArray(bodies));
  } catch (const std::exception& e) {
    return postgres::StatusFromException(e, "enqueue audit events");
  }
  pool_->WakeAfterCommit(channel);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<PendingEvent>> PostgresOutboxStore::FetchUnsent(int limit) {
  return pool_->RunStatementWithResult<std::vector<PendingEvent>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::vector<PendingEvent>> {
        std::vector<PendingEvent> out;
        for (const auto& row : txn.exec_prepared(prefix_ + "unsent", limit)) {
          PendingEvent p;
          p.id = row[0].as<int64_t>();
          pqxx::binarystring bytes(row[1]);
          if (!p.event.ParseFromString(bytes.str())) {
            return absl::DataLossError(absl::StrCat(schema_, ".outbox row ", p.id, " does not parse as an Event"));
          }
          out.push_back(std::move(p));
        }
        return out;
      });
}

absl::Status PostgresOutboxStore::MarkSent(const std::vector<int64_t>& ids) {
  if (ids.empty()) return absl::OkStatus();
  return pool_->RunStatement([&](pqxx::transaction_base& txn) {
    txn.exec_prepared0(prefix_ + "mark_sent", IdArray(ids));
    return absl::OkStatus();
  });
}

absl::Status PostgresOutboxStore::RecordFailure(const std::vector<int64_t>& ids, const std::string& error) {
  if (ids.empty()) return absl::OkStatus();
  return pool_->RunStatement([&](pqxx::transaction_base& txn) {
    txn.exec_prepared0(prefix_ + "failed", IdArray(ids), error);
    return absl::OkStatus();
  });
}

absl::StatusOr<int64_t> PostgresOutboxStore::Backlog() {
  return pool_->RunStatementWithResult<int64_t>([&](pqxx::transaction_base& txn) -> absl::StatusOr<int64_t> {
    return txn.exec_prepared1(prefix_ + "backlog")[0].as<int64_t>();
  });
}

}  // namespace ferry::outbox
