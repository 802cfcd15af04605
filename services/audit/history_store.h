#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ferry/v1/audit.pb.h"

namespace ferry::audit {

// One deployment outcome event (DEPLOYMENT_SUCCEEDED, _FAILED or
// _ROLLED_BACK) as time travel and DORA read it.
struct DeploymentOutcome {
  v1::AuditAction action = v1::AUDIT_ACTION_UNSPECIFIED;
  v1::DeployedRevision deployment;  // with time and sequence of the event
  std::string message;
  // DoraOutcomes only: the commit time of the revision (from the first
  // REVISION_DETECTED event of that repository and sha: its commit_time_unix
  // detail, else the event's own time), set on successes whose revision the
  // log has seen; and, on failures, when the next DEPLOYMENT_SUCCEEDED of the
  // same application and environment happened, if one has.
  std::optional<absl::Time> commit_time;
  std::optional<absl::Time> next_success_time;
};

// Where to resume a ListChanges page: after this (time, sequence).
struct ChangeCursor {
  absl::Time time = absl::InfinitePast();
  int64_t sequence = 0;
};

// Read-only queries of the deployment history in the audit log (the
// events table's deployment outcome events and their partial indexes,
// schema/004_deployment_history.sql, and the live intervals derived from
// them in the append's transaction, schema/005_deployed_intervals.sql). An empty application or environment
// matches all. Thread-safe.
class HistoryStore {
 public:
  virtual ~HistoryStore() = default;

  // Per (application, environment), the last DEPLOYMENT_SUCCEEDED with
  // event time <= `at`, sorted by application then environment.
  virtual absl::StatusOr<std::vector<DeploymentOutcome>> StateAt(absl::Time at, const std::string& application,
                                                                 const std::string& environment) = 0;
  // The pairs with a DEPLOYMENT_SUCCEEDED in [start, end) (those whose live
  // deployment may differ between the two ends), each with its last
  // success before `start` (in `before`, absent when none) and before `end`
  // (in `after`), both sorted by application then environment.
  struct Moved {
    std::vector<DeploymentOutcome> before;
    std::vector<DeploymentOutcome> after;
  };
  virtual absl::StatusOr<Moved> MovedBetween(absl::Time start, absl::Time end, const std::string& application,
                                             const std::string& environment) = 0;
  // Outcome events with start <= time < end and (time, sequence) after
  // `after`, in (time, sequence) order, at most `limit`.
  virtual absl::StatusOr<std::vector<DeploymentOutcome>> Outcomes(absl::Time start, absl::Time end,
                                                                  const std::string& application,
                                                                  const std::string& environment,
                                                                  const ChangeCursor& after, int limit) = 0;
  // Every outcome event with start <= time < end, in (time, sequence)
  // order, with commit_time and next_success_time filled in.
  virtual absl::StatusOr<std::vector<DeploymentOutcome>> DoraOutcomes(absl::Time start, absl::Time end,
                                                                      const std::string& application,
                                                                      const std::string& environment) = 0;
};

}  // namespace ferry::audit
