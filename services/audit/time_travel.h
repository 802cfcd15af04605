#pragma once

#include "absl/status/statusor.h"
#include "common/clock/clock.h"
#include "ferry/v1/audit.pb.h"
#include "services/audit/history_store.h"

namespace ferry::audit {

// Time travel and DORA metrics over the audit log's deployment history:
// request checks and defaults (an unset end is now), paging, and the
// per-target before/after of ListChanges. Thread-safe.
class TimeTravel {
 public:
  TimeTravel(HistoryStore& store, const Clock& clock) : store_(store), clock_(clock) {}

  absl::StatusOr<v1::GetDeployedStateResponse> GetDeployedState(const v1::GetDeployedStateRequest& req);
  absl::StatusOr<v1::ListChangesResponse> ListChanges(const v1::ListChangesRequest& req);
  absl::StatusOr<v1::GetDoraMetricsResponse> GetDoraMetrics(const v1::GetDoraMetricsRequest& req);

 private:
  HistoryStore& store_;
  const Clock& clock_;
};

}  // namespace ferry::audit
