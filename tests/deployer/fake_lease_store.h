#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/clock/clock.h"
#include "common/concurrency/mutex.h"
#include "services/deployer/lease_store.h"

namespace ferry::deployer::testing {

// LeaseStore in memory, with the semantics of PostgresLeaseStore; `clock`
// plays the database's clock. Records the audit events of acquisitions.
// `fail` makes every call UNAVAILABLE (a database outage). Thread-safe.
class FakeLeaseStore final : public LeaseStore {
 public:
  explicit FakeLeaseStore(const Clock* clock) : clock_(clock) {}

  absl::Status Register(const std::string& env, const std::string& group) override {
    ferry::MutexLock l(&mu_);
    if (fail_) return absl::UnavailableError("database down");
    auto [it, inserted] = rows_.try_emplace(env);
    if (inserted) {
      it->second.environment_id = env;
      it->second.deployer_group = group;
    } else if (it->second.deployer_group != group) {
      it->second.deployer_group = group;
      it->second.expire_time = absl::InfinitePast();
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<EnvironmentLease>> Acquire(const std::string& holder, const std::string& group,
                                                        const std::vector<std::string>& held, bool reclaim_own,
                                                        absl::Duration ttl, int limit,
                                                        const LeaseEvents& events) override {
    ferry::MutexLock l(&mu_);
    if (fail_) return absl::UnavailableError("database down");
    const absl::Time now = clock_->Now();
    std::vector<EnvironmentLease> out;
    for (auto& [env, row] : rows_) {
      if (static_cast<int>(out.size()) >= limit) break;
      if (row.deployer_group != group) continue;
      bool mine_forgotten = reclaim_own && row.holder == holder && std::find(held.begin(), held.end(), env) == held.end();
      if (!(row.expire_time < now || mine_forgotten)) continue;
      EnvironmentLease lease = row;
      lease.previous_holder = row.holder;
      lease.previous_expire_time = row.expire_time;
      lease.holder = holder;
      lease.token = row.token + 1;
      lease.expire_time = now + ttl;
      row.holder = holder;
      row.token = lease.token;
      row.expire_time = lease.expire_time;
      if (events) {
        for (v1::Event& e : events(lease)) events_.push_back(std::move(e));
      }
      out.push_back(lease);
    }
    return out;
  }
  absl::StatusOr<std::vector<EnvironmentLease>> Renew(const std::string& holder, const std::string& group,
                                                      const std::map<std::string, int64_t>& held,
                                                      absl::Duration ttl) override {
    ferry::MutexLock l(&mu_);
    if (fail_) return absl::UnavailableError("database down");
    std::vector<EnvironmentLease> out;
    for (const auto& [env, token] : held) {
      auto it = rows_.find(env);
      if (it == rows_.end() || it->second.holder != holder || it->second.token != token ||
          it->second.deployer_group != group) {
        continue;
      }
      it->second.expire_time = clock_->Now() + ttl;
      out.push_back(it->second);
    }
    return out;
  }
  absl::Status Release(const std::string& holder, const std::map<std::string, int64_t>& held) override {
    ferry::MutexLock l(&mu_);
    if (fail_) return absl::UnavailableError("database down");
    for (const auto& [env, token] : held) {
      auto it = rows_.find(env);
      if (it != rows_.end() && it->second.holder == holder && it->second.token == token) {
        it->second.expire_time = absl::InfinitePast();
      }
    }
    return absl::OkStatus();
  }

  // The row as stored (zero values when absent).
  EnvironmentLease Row(const std::string& env) {
    ferry::MutexLock l(&mu_);
    auto it = rows_.find(env);
    return it == rows_.end() ? EnvironmentLease{} : it->second;
  }
  std::vector<v1::Event> events() {
    ferry::MutexLock l(&mu_);
    return events_;
  }
  void set_fail(bool fail) {
    ferry::MutexLock l(&mu_);
    fail_ = fail;
  }

 private:
  const Clock* const clock_;
  ferry::Mutex mu_;
  bool fail_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, EnvironmentLease> rows_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::Event> events_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::deployer::testing
