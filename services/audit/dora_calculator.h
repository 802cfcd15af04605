#pragma once

#include <vector>

#include "absl/time/time.h"
#include "ferry/v1/audit.pb.h"
#include "services/audit/history_store.h"

namespace ferry::audit {

// The four DORA figures from the deployment outcome events of a range
// (HistoryStore::DoraOutcomes), in total and per application and
// environment. Pure: the definitions are in docs/history.md and on
// v1::DoraFigures. A deployment is counted in the range its outcome events
// fall in; its failure time is its first FAILED or ROLLED_BACK event.
class DoraCalculator {
 public:
  static v1::GetDoraMetricsResponse Compute(const std::vector<DeploymentOutcome>& outcomes, absl::Time start,
                                            absl::Time end);
};

}  // namespace ferry::audit
