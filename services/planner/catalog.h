#pragma once

#include <string>
#include <vector>

#include <google/protobuf/field_mask.pb.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/clock/clock.h"
#include "ferry/v1/planner.pb.h"
#include "services/planner/planner_events.h"
#include "services/planner/planner_store.h"
#include "services/planner/sync_window.h"

namespace ferry::planner {

// One job: the catalog of applications and environments made through the
// API (create, get with per-environment status, list, update by field mask,
// delete). Definitions declared in a ferry.yaml are refused here (see
// DeclarativeReconciler). Holds no state of its own; thread-safe.
//
// Status codes: INVALID_ARGUMENT names the field; NOT_FOUND for unknown ids;
// ALREADY_EXISTS for a taken id; FAILED_PRECONDITION for a definition
// declared in Git or still in use.
class Catalog {
 public:
  // `plans` is read for an application's per-environment status; `windows`
  // bounds environments' sync windows.
  Catalog(CatalogStore* catalog, PlanStore* plans, const Clock* clock, SyncWindowLimits windows = SyncWindowLimits())
      : catalog_(catalog), plans_(plans), events_(clock), windows_(windows) {}

  absl::StatusOr<v1::Application> CreateApplication(v1::Application app, const v1::Actor& actor);
  absl::StatusOr<v1::Application> GetApplication(const std::string& id);
  absl::StatusOr<v1::ListApplicationsResponse> ListApplications(const v1::ListApplicationsRequest& request);
  // Merged into the stored spec; merged again when it changed meanwhile.
  absl::StatusOr<v1::Application> UpdateApplication(const v1::Application& update, const google::protobuf::FieldMask& mask,
                                                    const v1::Actor& actor);
  absl::Status DeleteApplication(const std::string& id, const v1::Actor& actor);
  absl::StatusOr<v1::Environment> CreateEnvironment(v1::Environment env, const v1::Actor& actor);
  absl::StatusOr<v1::Environment> GetEnvironment(const std::string& id);
  absl::StatusOr<v1::ListEnvironmentsResponse> ListEnvironments(const v1::ListEnvironmentsRequest& request);
  absl::StatusOr<v1::Environment> UpdateEnvironment(const v1::Environment& update, const google::protobuf::FieldMask& mask,
                                                    const v1::Actor& actor);
  absl::Status DeleteEnvironment(const std::string& id, const v1::Actor& actor);

 private:
  // One attempt of UpdateApplication / UpdateEnvironment: ABORTED when the
  // stored spec changed between the read and the write.
  absl::StatusOr<v1::Application> MergeApplicationUpdate(const v1::Application& update,
                                                         const google::protobuf::FieldMask& mask,
                                                         const v1::Actor& actor);
  absl::StatusOr<v1::Environment> MergeEnvironmentUpdate(const v1::Environment& update,
                                                         const google::protobuf::FieldMask& mask,
                                                         const v1::Actor& actor);

  CatalogStore* catalog_;
  PlanStore* plans_;
  const PlannerEvents events_;
  const SyncWindowLimits windows_;
};

// Closes an open plan of a deleted application (REJECTED, "application
// deleted") and returns its audit event. Used inside the deleting
// transaction (ConfigChange::close_open_plan).
std::vector<v1::Event> RejectForDeletion(v1::Plan& plan, const v1::Actor& actor, const PlannerEvents& events);

// "<path> of repository <id> (<ref>)", as messages name a ferry.yaml.
std::string DescribeSource(const v1::DeclarationSource& source);

}  // namespace ferry::planner
