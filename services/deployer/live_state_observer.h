#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock/clock.h"
#include "ferry/v1/deployer.pb.h"
#include "services/deployer/deployment_store.h"
#include "services/deployer/target.h"

namespace ferry::deployer {

// Observes the live state of an application's objects on its target: health
// and drift of each applied object (and of extra objects asked for), the
// live revision and the pin.
class LiveStateObserver {
 public:
  LiveStateObserver(DeploymentRecords* records, PinStore* pins, TargetFactory* targets, const Clock* clock)
      : records_(records), pins_(pins), targets_(targets), clock_(clock) {}

  absl::StatusOr<v1::LiveState> GetLiveState(const v1::GetLiveStateRequest& req);
  absl::StatusOr<v1::LiveState> ObserveLiveState(const v1::ObserveLiveStateRequest& req);

 private:
  // `target` is used for an application never deployed (may be null).
  absl::StatusOr<v1::LiveState> Observe(const std::string& app, const std::string& env, const v1::DeployTarget* target,
                                        const std::vector<ObjectKey>& extra, bool include_json);

  DeploymentRecords* const records_;
  PinStore* const pins_;
  TargetFactory* const targets_;
  const Clock* const clock_;
};

}  // namespace ferry::deployer
