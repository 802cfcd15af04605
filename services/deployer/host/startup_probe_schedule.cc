#include "services/deployer/host/startup_probe_schedule.h"

#include <algorithm>

namespace ferry::deployer::host {

absl::Duration StartupProbeDelay(absl::Duration waited, absl::Duration period) {
  if (waited < absl::ZeroDuration()) waited = absl::ZeroDuration();
  return std::min(std::max(kFirstStartupRetry, waited / 4), std::max(period, kFirstStartupRetry));
}

}  // namespace ferry::deployer::host
