#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ferry/v1/audit.pb.h"

namespace ferry::deployer {

// The lease of one environment: which deployer group owns it and which
// replica of that group (holder) acts there until expire_time. `token` (the
// fencing token) grows by one at every acquisition.
struct EnvironmentLease {
  std::string environment_id;
  std::string deployer_group;
  std::string holder;
  int64_t token = 0;
  absl::Time expire_time = absl::InfinitePast();
  // Set by Acquire: who held it before ("" when nobody did) and until when.
  std::string previous_holder;
  absl::Time previous_expire_time = absl::InfinitePast();
};

// Builds the audit events recorded with an acquisition, in its transaction.
using LeaseEvents = std::function<std::vector<v1::Event>(const EnvironmentLease& acquired)>;

// Storage of the environment leases, shared by every replica of every
// deployer group. Expiry is judged by the store's clock (the database's),
// never by a replica's. Thread-safe. Errors: UNAVAILABLE (retry), INTERNAL.
class LeaseStore {
 public:
  virtual ~LeaseStore() = default;
  // Makes `group` the owner of `env` (a new environment, or one whose
  // ferry.yaml `deployer:` changed). A lease moving to another group is
  // freed at once: its holder's next renewal fails.
  virtual absl::Status Register(const std::string& env, const std::string& group) = 0;
  // Takes for `holder` every lease of `group` that is free or expired and,
  // with `reclaim_own`, any the store says `holder` holds that is not in
  // `held` (a replica restarted with the same id, at its start), up to
  // `limit`: holder set, token + 1, expiry now + ttl. `events` are written
  // with each acquisition.
  virtual absl::StatusOr<std::vector<EnvironmentLease>> Acquire(const std::string& holder, const std::string& group,
                                                                const std::vector<std::string>& held,
                                                                bool reclaim_own, absl::Duration ttl, int limit,
                                                                const LeaseEvents& events) = 0;
  // Extends to now + ttl each lease of `held` (environment -> token) that
  // `holder` still holds with that token in `group`; returns those extended.
  virtual absl::StatusOr<std::vector<EnvironmentLease>> Renew(const std::string& holder, const std::string& group,
                                                              const std::map<std::string, int64_t>& held,
                                                              absl::Duration ttl) = 0;
  // Frees the leases of `held` that `holder` still holds (a clean stop), so
  // another replica takes them at once.
  virtual absl::Status Release(const std::string& holder, const std::map<std::string, int64_t>& held) = 0;
};

// What the deployment store asks before a write of deployment state: the
// fencing token this replica holds for an environment, if it holds a valid
// lease there. Thread-safe.
class LeaseFences {
 public:
  virtual ~LeaseFences() = default;
  // This replica's identity, as the lease table names holders.
  virtual const std::string& holder() const = 0;
  // The token of this replica's valid lease on `env`; 0 when it holds none
  // (or its lease may have expired by the store's clock).
  virtual int64_t TokenFor(const std::string& env) const = 0;
};

}  // namespace ferry::deployer
