#pragma once

#include <memory>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "common/concurrency/mutex.h"
#include "services/deployer/deployment_store.h"
#include "services/deployer/lease_keeper.h"

namespace ferry::deployer {

// The (application, environment) locks of a replica among several: a lock
// is granted only for an environment whose lease this replica holds
// (LeaseKeeper), and within the replica one holder per (application,
// environment) at a time. Across replicas the lease (and the fencing token
// every write of deployment state checks) is the exclusion, so a paused or
// partitioned ex-holder blocks nobody after the takeover. Thread-safe.
class LeasedAppLocks final : public AppLocks {
 public:
  explicit LeasedAppLocks(const LeaseKeeper* leases) : leases_(leases), state_(std::make_shared<State>()) {}

  absl::StatusOr<std::unique_ptr<AppLock>> TryLock(const std::string& app, const std::string& env) override;
  bool Owns(const std::string& env) override { return leases_->Holds(env); }

 private:
  struct State {
    ferry::Mutex mu;
    std::set<std::string> locked ABSL_GUARDED_BY(mu);  // "app/env" keys held in this process.
  };
  class Lock;

  const LeaseKeeper* const leases_;
  const std::shared_ptr<State> state_;  // Shared with the locks, which may outlive a call.
};

}  // namespace ferry::deployer
