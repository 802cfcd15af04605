#include "services/deployer/lease_keeper.h"

#include "absl/strings/str_cat.h"
#include "common/logging/logger.h"
#include "services/deployer/audit_events.h"

namespace ferry::deployer {

absl::Status ValidateDeployerGroup(const std::string& group) {
  bool ok = !group.empty() && group.size() <= 63 && group.front() != '-' && group.back() != '-';
  for (char c : group) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-');
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("--deployer-group: \"", group,
                                                 "\" must be 1 to 63 of a-z, 0-9 and '-', starting and ending with a "
                                                 "letter or digit"));
}

LeaseKeeper::LeaseKeeper(LeaseStore* store, const Clock* clock, LeaseOptions options, DeployerMetrics* metrics)
    : store_(store), clock_(clock), options_(std::move(options)), metrics_(metrics) {}

int64_t LeaseKeeper::TokenFor(const std::string& env) const {
  ferry::MutexLock l(&mu_);
  auto it = held_.find(env);
  if (it == held_.end() || clock_->Now() >= it->second.valid_until) return 0;
  return it->second.token;
}

std::vector<LeaseKeeper::Held> LeaseKeeper::HeldLeases() const {
  ferry::MutexLock l(&mu_);
  std::vector<Held> out;
  for (const auto& entry : held_) out.push_back(entry.second);
  return out;
}

void LeaseKeeper::Drop(const std::string& env, const std::string& why) {
  auto it = held_.find(env);
  if (it == held_.end()) return;
  logging::Warn("environment lease lost", {{"environment", env},
                                           {"holder", options_.holder},
                                           {"token", it->second.token},
                                           {"reason", why}});
  if (metrics_ != nullptr) metrics_->LeaseDropped(env);
  held_.erase(it);
}

absl::StatusOr<absl::Duration> LeaseKeeper::Tick() {
  const absl::Time started = clock_->Now();
  std::map<std::string, int64_t> held;
  {
    ferry::MutexLock l(&mu_);
    for (const auto& [env, h] : held_) held[env] = h.token;
  }
  if (!held.empty()) {
    absl::StatusOr<std::vector<EnvironmentLease>> renewed = store_->Renew(options_.holder, options_.group, held,
                                                                          options_.ttl);
    ferry::MutexLock l(&mu_);
    if (!renewed.ok()) {
      // Kept until their own time runs out: the store may be back before.
      logging::Warn("cannot renew environment leases", {{"error", renewed.status().ToString()}});
      for (auto it = held_.begin(); it != held_.end();) {
        auto next = std::next(it);
        if (started >= it->second.valid_until) Drop(it->first, "not renewed in time");
        it = next;
      }
    } else {
      std::set<std::string> kept;
      for (const EnvironmentLease& lease : *renewed) {
        auto it = held_.find(lease.environment_id);
        if (it == held_.end() || it->second.token != lease.token) continue;
        it->second.valid_until = ValidUntil(started);
        kept.insert(lease.environment_id);
        if (metrics_ != nullptr) metrics_->LeaseHeld(lease.environment_id, options_.holder, lease.expire_time);
      }
      for (const auto& [env, token] : held) {
        if (!kept.count(env)) Drop(env, "renewal refused: taken over or moved to another deployer group");
      }
    }
  }
  absl::Status acquired = AcquireFree(started);
  if (!acquired.ok()) logging::Warn("cannot take environment leases", {{"error", acquired.ToString()}});
  return options_.ttl / 3;
}

absl::Status LeaseKeeper::AcquireFree(absl::Time started) {
  std::vector<std::string> held;
  int room = 0;
  bool reclaim_own = false;
  {
    ferry::MutexLock l(&mu_);
    for (const auto& entry : held_) held.push_back(entry.first);
    room = options_.max_leases - static_cast<int>(held_.size());
    // Only at the start: leases under this id then belong to a previous
    // process of this replica. Later, one this replica lost is another's.
    reclaim_own = !acquired_once_;
  }
  if (room <= 0) return absl::OkStatus();
  const std::string& me = options_.holder;
  absl::StatusOr<std::vector<EnvironmentLease>> taken = store_->Acquire(
      me, options_.group, held, reclaim_own, options_.ttl, room, [&me](const EnvironmentLease& lease) {
        std::string message =
            lease.previous_holder.empty() || lease.previous_holder == me
                ? absl::StrCat("deployer ", me, " took the lease of environment \"", lease.environment_id,
                               "\" (token ", lease.token, ")")
                : absl::StrCat("deployer ", me, " took over environment \"", lease.environment_id, "\" from ",
                               lease.previous_holder, ", whose lease expired at ",
                               absl::FormatTime(lease.previous_expire_time), " (token ", lease.token, ")");
        return std::vector<v1::Event>{AppEvent(v1::AUDIT_ACTION_ENVIRONMENT_LEASE_ACQUIRED, "", lease.environment_id,
                                               FerryActor(), message,
                                               absl::StrCat("lease/", lease.environment_id, "/", lease.token),
                                               {{"holder", me},
                                                {"previous_holder", lease.previous_holder},
                                                {"deployer_group", lease.deployer_group},
                                                {"token", absl::StrCat(lease.token)}})};
      });
  if (!taken.ok()) return taken.status();
  ferry::MutexLock l(&mu_);
  acquired_once_ = true;
  for (const EnvironmentLease& lease : *taken) {
    held_[lease.environment_id] = Held{lease.environment_id, lease.token, ValidUntil(started)};
    const bool takeover = !lease.previous_holder.empty() && lease.previous_holder != me;
    logging::Info(takeover ? "environment taken over" : "environment lease taken",
                  {{"environment", lease.environment_id},
                   {"holder", me},
                   {"previous_holder", lease.previous_holder},
                   {"token", lease.token},
                   {"expires", absl::FormatTime(lease.expire_time)}});
    if (metrics_ != nullptr) {
      metrics_->LeaseHeld(lease.environment_id, me, lease.expire_time);
      if (takeover) metrics_->LeaseTakenOver();
    }
  }
  return absl::OkStatus();
}

absl::Status LeaseKeeper::Claim(const std::string& env) {
  bool known = false;
  {
    ferry::MutexLock l(&mu_);
    known = registered_.count(env) > 0 || held_.count(env) > 0;
  }
  if (!known) {
    absl::Status s = store_->Register(env, options_.group);
    if (!s.ok()) return s;
    ferry::MutexLock l(&mu_);
    registered_.insert(env);
  }
  if (Holds(env)) return absl::OkStatus();
  return AcquireFree(clock_->Now());
}

void LeaseKeeper::ReleaseAll() {
  std::map<std::string, int64_t> held;
  {
    ferry::MutexLock l(&mu_);
    for (const auto& [env, h] : held_) held[env] = h.token;
    for (const auto& [env, token] : held) {
      if (metrics_ != nullptr) metrics_->LeaseDropped(env);
    }
    held_.clear();
  }
  if (held.empty()) return;
  absl::Status s = store_->Release(options_.holder, held);
  if (!s.ok()) {
    logging::Warn("cannot release environment leases; they expire on their own",
                  {{"error", s.ToString()}, {"ttl", absl::FormatDuration(options_.ttl)}});
    return;
  }
  logging::Info("environment leases released", {{"holder", options_.holder}, {"count", static_cast<int64_t>(held.size())}});
}

}  // namespace ferry::deployer
