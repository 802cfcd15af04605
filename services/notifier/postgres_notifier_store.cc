#include "services/notifier/postgres_notifier_store.h"

#include <google/protobuf/util/time_util.h>

#include <pqxx/pqxx>

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"

namespace ferry::notifier {
namespace {

google::protobuf::Timestamp FromMicros(int64_t us) {
  return google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(us);
}

}  // namespace

PostgresNotifierStore::PostgresNotifierStore(postgres::ConnectionPool& pool, outbox::OutboxStore* outbox)
    : pool_(pool), outbox_(outbox) {
  pool_.Prepare("notifier_txid", "SELECT txid_current()");
  pool_.Prepare("notifier_cursor", "SELECT after_sequence FROM notifier.audit_cursor");
  pool_.Prepare("notifier_cursor_lock", "SELECT after_sequence FROM notifier.audit_cursor FOR UPDATE");
  pool_.Prepare("notifier_cursor_set", "UPDATE notifier.audit_cursor SET after_sequence = $1");
  pool_.Prepare("notifier_delivery_insert",
                "INSERT INTO notifier.deliveries (event_sequence, subscription, event_kind, target, request)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_sequence, subscription) DO NOTHING");
  pool_.Prepare("notifier_subs_list",
                "SELECT name, source, spec, (extract(epoch FROM create_time) * 1000000)::bigint"
                " FROM notifier.subscriptions ORDER BY name");
  pool_.Prepare("notifier_sub_insert", "INSERT INTO notifier.subscriptions (name, source, spec) VALUES ($1, $2, $3)");
  pool_.Prepare("notifier_sub_source", "SELECT source FROM notifier.subscriptions WHERE name = $1 FOR UPDATE");
  pool_.Prepare("notifier_sub_delete", "DELETE FROM notifier.subscriptions WHERE name = $1");
  pool_.Prepare("notifier_sub_drop_pending",
                "DELETE FROM notifier.deliveries WHERE subscription = $1 AND state = 1");
  pool_.Prepare("notifier_sub_config_names",
                "SELECT name, source FROM notifier.subscriptions ORDER BY name FOR UPDATE");
  pool_.Prepare("notifier_sub_upsert_config",
                "INSERT INTO notifier.subscriptions (name, source, spec) VALUES ($1, 'config', $2)"
                " ON CONFLICT (name) DO UPDATE SET spec = EXCLUDED.spec WHERE notifier.subscriptions.source = 'config'"
                " AND notifier.subscriptions.spec IS DISTINCT FROM EXCLUDED.spec");
  pool_.Prepare("notifier_subs_declared",
                "SELECT name, spec FROM notifier.subscriptions WHERE source = 'declared' ORDER BY name FOR UPDATE");
  pool_.Prepare("notifier_sub_upsert_declared",
                "INSERT INTO notifier.subscriptions (name, source, spec) VALUES ($1, 'declared', $2)"
                " ON CONFLICT (name) DO UPDATE SET spec = EXCLUDED.spec"
                " WHERE notifier.subscriptions.source = 'declared'");
  pool_.Prepare("notifier_claim",
                "UPDATE notifier.deliveries SET attempts = attempts + 1,"
                " next_attempt_at = now() + make_interval(secs => $2::double precision)"
                " WHERE id IN (SELECT id FROM notifier.deliveries WHERE state = 1 AND next_attempt_at <= now()"
                " ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)"
                " RETURNING id, event_sequence, subscription, attempts, request");
  pool_.Prepare("notifier_delivered",
                "UPDATE notifier.deliveries SET state = 2, delivered_at = now(), last_error = '' WHERE id = $1");
  pool_.Prepare("notifier_retry",
                "UPDATE notifier.deliveries SET last_error = $2,"
                " next_attempt_at = now() + make_interval(secs => $3::double precision) WHERE id = $1 AND state = 1");
  pool_.Prepare("notifier_give_up", "UPDATE notifier.deliveries SET state = 3, last_error = $2 WHERE id = $1 AND state = 1");
  pool_.Prepare("notifier_list_deliveries",
                "SELECT id, subscription, event_sequence, event_kind, state, attempts, last_error,"
                " (extract(epoch FROM next_attempt_at) * 1000000)::bigint,"
                " COALESCE((extract(epoch FROM delivered_at) * 1000000)::bigint, 0), target"
                " FROM notifier.deliveries"
                " WHERE ($1 = 0 OR state = $1) AND ($2 = '' OR subscription = $2) AND ($3 = 0 OR id < $3)"
                " ORDER BY id DESC LIMIT $4");
  pool_.Prepare("notifier_counts",
                "SELECT count(*) FILTER (WHERE state = 1), count(*) FILTER (WHERE state = 3) FROM notifier.deliveries");
}

absl::StatusOr<int64_t> PostgresNotifierStore::Cursor() {
  return pool_.RunStatementWithResult<int64_t>([](pqxx::transaction_base& txn) -> absl::StatusOr<int64_t> {
    return txn.exec_prepared1("notifier_cursor")[0].as<int64_t>();
  });
}

absl::StatusOr<int> PostgresNotifierStore::RecordEvents(const std::vector<EventDeliveries>& events) {
  if (events.empty()) return 0;
  return pool_.RunInTransactionWithResult<int>([&](pqxx::work& txn) -> absl::StatusOr<int> {
    const int64_t cursor = txn.exec_prepared1("notifier_cursor_lock")[0].as<int64_t>();
    int64_t last = cursor;
    int added = 0;
    for (const EventDeliveries& e : events) {
      if (e.sequence <= last) continue;
      for (const NewDelivery& d : e.deliveries) {
        added += static_cast<int>(txn.exec_prepared("notifier_delivery_insert", e.sequence, d.subscription,
                                                    static_cast<int>(d.event), d.target, d.request)
                                      .affected_rows());
      }
      last = e.sequence;
    }
    if (last != cursor) txn.exec_prepared0("notifier_cursor_set", last);
    return added;
  });
}

absl::StatusOr<std::vector<v1::Subscription>> PostgresNotifierStore::ListSubscriptions() {
  return pool_.RunStatementWithResult<std::vector<v1::Subscription>>(
      [](pqxx::transaction_base& txn) -> absl::StatusOr<std::vector<v1::Subscription>> {
        std::vector<v1::Subscription> out;
        for (const pqxx::row& row : txn.exec_prepared("notifier_subs_list")) {
          pqxx::binarystring spec(row[2]);
          v1::Subscription s;
          if (!s.ParseFromString(spec.str())) {
            return absl::DataLossError(absl::StrCat("subscription ", row[0].as<std::string>(), ": unreadable"));
          }
          s.set_name(row[0].as<std::string>());
          s.set_source(row[1].as<std::string>());
          *s.mutable_create_time() = FromMicros(row[3].as<int64_t>());
          out.push_back(std::move(s));
        }
        return out;
      });
}

absl::Status PostgresNotifierStore::Record(pqxx::work& txn, const std::optional<v1::Event>& audit) {
  if (!audit.has_value() || outbox_ == nullptr) return absl::OkStatus();
  v1::Event e = *audit;
  // Unique per transaction, so per change.
  e.set_idempotency_key(absl::StrCat(e.idempotency_key(), "/", txn.exec_prepared1("notifier_txid")[0].as<int64_t>()));
  return outbox_->Enqueue(txn, std::move(e));
}

absl::Status PostgresNotifierStore::CreateSubscription(const v1::Subscription& s,
                                                       const std::optional<v1::Event>& audit) {
  absl::Status st = pool_.RunInTransaction([&](pqxx::work& txn) {
    txn.exec_prepared0("notifier_sub_insert", s.name(), s.source(), pqxx::binarystring(s.SerializeAsString()));
    return Record(txn, audit);
  });
  if (absl::IsAlreadyExists(st)) return absl::AlreadyExistsError("subscription " + s.name() + " already exists");
  return st;
}

absl::Status PostgresNotifierStore::DeleteSubscription(const std::string& name,
                                                       const std::optional<v1::Event>& audit) {
  return pool_.RunInTransaction([&](pqxx::work& txn) -> absl::Status {
    pqxx::result r = txn.exec_prepared("notifier_sub_source", name);
    if (r.empty()) return absl::NotFoundError("no subscription " + name);
    if (r[0][0].as<std::string>() == "config") {
      return absl::FailedPreconditionError("subscription " + name +
                                           " comes from the notifier's --subscriptions-file: remove it there");
    }
    if (r[0][0].as<std::string>() == "declared") {
      return absl::FailedPreconditionError("subscription " + name +
                                           " is declared by its application (ferry.yaml notifications): remove it there");
    }
    txn.exec_prepared0("notifier_sub_delete", name);
    txn.exec_prepared0("notifier_sub_drop_pending", name);
    return Record(txn, audit);
  });
}

absl::Status PostgresNotifierStore::ReplaceConfigSubscriptions(const std::vector<v1::Subscription>& subs) {
  return pool_.RunInTransaction([&](pqxx::work& txn) -> absl::Status {
    std::map<std::string, std::string> existing;
    for (const pqxx::row& row : txn.exec_prepared("notifier_sub_config_names")) {
      existing[row[0].as<std::string>()] = row[1].as<std::string>();
    }
    std::set<std::string> wanted;
    for (const v1::Subscription& s : subs) {
      if (auto it = existing.find(s.name()); it != existing.end() && it->second != "config") {
        return absl::FailedPreconditionError("subscription " + s.name() +
                                             " of the --subscriptions-file is already an API subscription; delete "
                                             "it (ferry.v1.Notifier/DeleteSubscription) or rename it in the file");
      }
      v1::Subscription stored = s;
      stored.clear_create_time();
      stored.set_source("config");
      txn.exec_prepared0("notifier_sub_upsert_config", s.name(), pqxx::binarystring(stored.SerializeAsString()));
      wanted.insert(s.name());
    }
    for (const auto& [name, source] : existing) {
      if (source == "config" && wanted.count(name) == 0) {
        txn.exec_prepared0("notifier_sub_delete", name);
        txn.exec_prepared0("notifier_sub_drop_pending", name);
      }
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<int> PostgresNotifierStore::ReplaceDeclaredSubscriptions(const std::vector<v1::Subscription>& subs,
                                                                      const DeclaredChangeEvent& audit) {
  return pool_.RunInTransactionWithResult<int>([&](pqxx::work& txn) -> absl::StatusOr<int> {
    std::map<std::string, v1::Subscription> existing;
    for (const pqxx::row& row : txn.exec_prepared("notifier_subs_declared")) {
      v1::Subscription s;
      if (!s.ParseFromString(pqxx::binarystring(row[1]).str())) {
        return absl::DataLossError(absl::StrCat("subscription ", row[0].as<std::string>(), ": unreadable"));
      }
      existing[row[0].as<std::string>()] = std::move(s);
    }
    int changed = 0;
    std::set<std::string> wanted;
    for (const v1::Subscription& s : subs) {
      v1::Subscription stored = s;
      stored.clear_create_time();
      stored.set_source("declared");
      wanted.insert(s.name());
      auto it = existing.find(s.name());
      const std::string bytes = stored.SerializeAsString();
      if (it != existing.end() && it->second.SerializeAsString() == bytes) continue;
      if (txn.exec_prepared("notifier_sub_upsert_declared", s.name(), pqxx::binarystring(bytes)).affected_rows() != 1) {
        return absl::FailedPreconditionError("subscription " + s.name() + " exists and is not declared");
      }
      RETURN_IF_ERROR(Record(txn, audit(it == existing.end() ? nullptr : &it->second, &stored)));
      ++changed;
    }
    for (const auto& [name, old] : existing) {
      if (wanted.count(name) != 0) continue;
      txn.exec_prepared0("notifier_sub_delete", name);
      txn.exec_prepared0("notifier_sub_drop_pending", name);
      RETURN_IF_ERROR(Record(txn, audit(&old, nullptr)));
      ++changed;
    }
    return changed;
  });
}

absl::Status PostgresNotifierStore::RecordAuditEvent(const v1::Event& audit) {
  return pool_.RunInTransaction([&](pqxx::work& txn) { return Record(txn, audit); });
}

absl::StatusOr<std::vector<DueDelivery>> PostgresNotifierStore::ClaimDue(int limit, absl::Duration lease) {
  // One statement (UPDATE ... WHERE id IN (... FOR UPDATE SKIP LOCKED)).
  return pool_.RunStatementWithResult<std::vector<DueDelivery>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::vector<DueDelivery>> {
        std::vector<DueDelivery> out;
        for (const pqxx::row& row : txn.exec_prepared("notifier_claim", limit, absl::ToDoubleSeconds(lease))) {
          DueDelivery d;
          d.id = row[0].as<int64_t>();
          d.event_sequence = row[1].as<int64_t>();
          d.subscription = row[2].as<std::string>();
          d.attempts = row[3].as<int>();
          d.request = row[4].as<std::string>();
          out.push_back(std::move(d));
        }
        std::sort(out.begin(), out.end(), [](const DueDelivery& a, const DueDelivery& b) { return a.id < b.id; });
        return out;
      });
}

absl::Status PostgresNotifierStore::MarkDelivered(int64_t id) {
  return pool_.RunStatement([&](pqxx::transaction_base& txn) {
    txn.exec_prepared0("notifier_delivered", id);
    return absl::OkStatus();
  });
}

absl::Status PostgresNotifierStore::MarkFailed(int64_t id, const std::string& error,
                                               std::optional<absl::Duration> retry_in) {
  const std::string text = error.substr(0, 1000);
  return pool_.RunStatement([&](pqxx::transaction_base& txn) {
    if (retry_in.has_value()) {
      txn.exec_prepared0("notifier_retry", id, text, absl::ToDoubleSeconds(*retry_in));
    } else {
      txn.exec_prepared0("notifier_give_up", id, text);
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<v1::Delivery>> PostgresNotifierStore::ListDeliveries(v1::DeliveryState state,
                                                                               const std::string& subscription,
                                                                               int64_t before_id, int limit) {
  return pool_.RunStatementWithResult<std::vector<v1::Delivery>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::vector<v1::Delivery>> {
        std::vector<v1::Delivery> out;
        for (const pqxx::row& row : txn.exec_prepared("notifier_list_deliveries", static_cast<int>(state), subscription,
                                                      before_id, limit)) {
          v1::Delivery d;
          d.set_id(row[0].as<int64_t>());
          d.set_subscription(row[1].as<std::string>());
          d.set_event_sequence(row[2].as<int64_t>());
          d.set_event(static_cast<v1::NotificationEvent>(row[3].as<int>()));
          d.set_state(static_cast<v1::DeliveryState>(row[4].as<int>()));
          d.set_attempts(row[5].as<int>());
          d.set_last_error(row[6].as<std::string>());
          if (d.state() == v1::DELIVERY_STATE_PENDING) *d.mutable_next_attempt_time() = FromMicros(row[7].as<int64_t>());
          if (d.state() == v1::DELIVERY_STATE_DELIVERED) *d.mutable_delivered_time() = FromMicros(row[8].as<int64_t>());
          d.set_target(row[9].as<std::string>());
          out.push_back(std::move(d));
        }
        return out;
      });
}

absl::StatusOr<DeliveryCounts> PostgresNotifierStore::Counts() {
  return pool_.RunStatementWithResult<DeliveryCounts>([](pqxx::transaction_base& txn) -> absl::StatusOr<DeliveryCounts> {
    pqxx::row row = txn.exec_prepared1("notifier_counts");
    return DeliveryCounts{row[0].as<int64_t>(), row[1].as<int64_t>()};
  });
}

}  // namespace ferry::notifier
