#pragma once

#include <cstddef>
#include <map>
#include <optional>
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
// live revision and the pin. ObserveLiveState is paged: objects in identity
// order, at most `page_size` and about `page_bytes` bytes a page (always at
// least one object), so an application of any size fits the messages.
class LiveStateObserver {
 public:
  LiveStateObserver(DeploymentRecords* records, TargetFactory* targets, const Clock* clock)
      : records_(records), targets_(targets), clock_(clock) {}

  absl::StatusOr<v1::LiveState> GetLiveState(const v1::GetLiveStateRequest& req);
  absl::StatusOr<v1::ObserveLiveStateResponse> ObserveLiveState(const v1::ObserveLiveStateRequest& req,
                                                                 size_t page_bytes = kDefaultPageBytes);

  static constexpr size_t kDefaultPageBytes = 1024 * 1024;

 private:
  // Which objects to observe: all (GetLiveState), or a page of them.
  struct Page {
    bool paged = false;
    std::optional<ObjectKey> after;  // Start after this object.
    int size = 0;
    size_t bytes = 0;
    std::optional<ObjectKey> last;  // Output: the last object observed when the page is full.
    // Desired objects to dry-run on targets that can (ObserveLiveState).
    std::map<ObjectKey, const v1::Manifest*> desired;
  };
  // `target` is used for an application never deployed (may be null).
  absl::StatusOr<v1::LiveState> Observe(const std::string& app, const std::string& env, const v1::DeployTarget* target,
                                        const std::vector<ObjectKey>& extra, bool include_json, Page& page);

  DeploymentRecords* const records_;
  TargetFactory* const targets_;
  const Clock* const clock_;
};

}  // namespace ferry::deployer
