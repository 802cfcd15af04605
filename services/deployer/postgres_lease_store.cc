#include "services/deployer/postgres_lease_store.h"

#include <cmath>

#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/postgres/text_array.h"

namespace ferry::deployer {
namespace {

constexpr char kRegister[] = "deployer_lease_register";
constexpr char kAcquire[] = "deployer_lease_acquire";
constexpr char kRenew[] = "deployer_lease_renew";
constexpr char kRelease[] = "deployer_lease_release";

absl::Time FromEpoch(double seconds) {
  if (!std::isfinite(seconds)) return seconds < 0 ? absl::InfinitePast() : absl::InfiniteFuture();
  return absl::FromUnixMicros(static_cast<int64_t>(std::llround(seconds * 1e6)));
}

void SplitHeld(const std::map<std::string, int64_t>& held, std::string* envs, std::string* tokens) {
  std::vector<std::string> e;
  std::vector<int64_t> t;
  for (const auto& [env, token] : held) {
    e.push_back(env);
    t.push_back(token);
  }
  *envs = postgres::TextArray(e);
  *tokens = absl::StrCat("{", absl::StrJoin(t, ","), "}");
}

}  // namespace

PostgresLeaseStore::PostgresLeaseStore(postgres::ConnectionPool* pool, outbox::OutboxStore* outbox)
    : pool_(pool), outbox_(outbox) {
  // A lease moving to another group is freed at once (its holder's renewals
  // name the old group and fail).
  pool_->Prepare(kRegister,
                 "INSERT INTO deployer.environment_leases (environment_id, deployer_group) VALUES ($1, $2)"
                 " ON CONFLICT (environment_id) DO UPDATE SET deployer_group = EXCLUDED.deployer_group,"
                 " expire_time = '-infinity'"
                 " WHERE deployer.environment_leases.deployer_group <> EXCLUDED.deployer_group");
  // The pre-update row (prev) gives the previous holder for the audit event.
  pool_->Prepare(kAcquire,
                 "WITH prev AS ("
                 "  SELECT environment_id, holder, expire_time FROM deployer.environment_leases"
                 "  WHERE deployer_group = $2"
                 "    AND (expire_time < now() OR ($6 AND holder = $1 AND NOT (environment_id = ANY($3::text[]))))"
                 "  ORDER BY environment_id LIMIT $5 FOR UPDATE SKIP LOCKED)"
                 " UPDATE deployer.environment_leases l SET holder = $1, token = l.token + 1,"
                 "   expire_time = now() + make_interval(secs => $4::float8), acquire_time = now()"
                 " FROM prev WHERE l.environment_id = prev.environment_id"
                 " RETURNING l.environment_id, l.deployer_group, l.token, extract(epoch from l.expire_time)::float8,"
                 "   prev.holder, extract(epoch from prev.expire_time)::float8");
  pool_->Prepare(kRenew,
                 "UPDATE deployer.environment_leases l SET expire_time = now() + make_interval(secs => $5::float8)"
                 " FROM unnest($3::text[], $4::bigint[]) AS h(env, token)"
                 " WHERE l.environment_id = h.env AND l.token = h.token AND l.holder = $1 AND l.deployer_group = $2"
                 " RETURNING l.environment_id, l.deployer_group, l.token, extract(epoch from l.expire_time)::float8");
  pool_->Prepare(kRelease,
                 "UPDATE deployer.environment_leases l SET expire_time = '-infinity'"
                 " FROM unnest($2::text[], $3::bigint[]) AS h(env, token)"
                 " WHERE l.environment_id = h.env AND l.token = h.token AND l.holder = $1");
}

absl::Status PostgresLeaseStore::Register(const std::string& env, const std::string& group) {
  return pool_->RunInTransaction([&](pqxx::work& txn) {
    txn.exec_prepared0(kRegister, env, group);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<EnvironmentLease>> PostgresLeaseStore::Acquire(const std::string& holder,
                                                                          const std::string& group,
                                                                          const std::vector<std::string>& held,
                                                                          bool reclaim_own, absl::Duration ttl,
                                                                          int limit,
                                                                          const LeaseEvents& events) {
  return pool_->RunInTransactionWithResult<std::vector<EnvironmentLease>>(
      [&](pqxx::work& txn) -> absl::StatusOr<std::vector<EnvironmentLease>> {
        std::vector<EnvironmentLease> out;
        for (const pqxx::row& row :
             txn.exec_prepared(kAcquire, holder, group, postgres::TextArray(held), absl::ToDoubleSeconds(ttl), limit,
                               reclaim_own)) {
          EnvironmentLease lease;
          lease.environment_id = row[0].as<std::string>();
          lease.deployer_group = row[1].as<std::string>();
          lease.holder = holder;
          lease.token = row[2].as<int64_t>();
          lease.expire_time = FromEpoch(row[3].as<double>());
          lease.previous_holder = row[4].as<std::string>();
          lease.previous_expire_time = FromEpoch(row[5].as<double>());
          if (events) {
            for (const v1::Event& e : events(lease)) {
              absl::Status s = outbox_->Enqueue(txn, e);
              if (!s.ok()) return s;
            }
          }
          out.push_back(std::move(lease));
        }
        return out;
      });
}

absl::StatusOr<std::vector<EnvironmentLease>> PostgresLeaseStore::Renew(const std::string& holder,
                                                                        const std::string& group,
                                                                        const std::map<std::string, int64_t>& held,
                                                                        absl::Duration ttl) {
  std::string envs, tokens;
  SplitHeld(held, &envs, &tokens);
  return pool_->RunInTransactionWithResult<std::vector<EnvironmentLease>>(
      [&](pqxx::work& txn) -> absl::StatusOr<std::vector<EnvironmentLease>> {
        std::vector<EnvironmentLease> out;
        for (const pqxx::row& row : txn.exec_prepared(kRenew, holder, group, envs, tokens, absl::ToDoubleSeconds(ttl))) {
          EnvironmentLease lease;
          lease.environment_id = row[0].as<std::string>();
          lease.deployer_group = row[1].as<std::string>();
          lease.holder = holder;
          lease.token = row[2].as<int64_t>();
          lease.expire_time = FromEpoch(row[3].as<double>());
          out.push_back(std::move(lease));
        }
        return out;
      });
}

absl::Status PostgresLeaseStore::Release(const std::string& holder, const std::map<std::string, int64_t>& held) {
  std::string envs, tokens;
  SplitHeld(held, &envs, &tokens);
  return pool_->RunInTransaction([&](pqxx::work& txn) {
    txn.exec_prepared0(kRelease, holder, envs, tokens);
    return absl::OkStatus();
  });
}

}  // namespace ferry::deployer
