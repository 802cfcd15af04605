#pragma once

// Everything `ferry status` shows, read from the four services in a few
// calls: applications (with per-environment status) and in-flight plans
// from the planner; live state of each application x environment (asked
// concurrently) and the newest deployments from the deployer; the commits
// deployed from the repo-watcher's revisions.

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "cli/connection.h"

namespace ferry::cli {

struct StatusRow {
  std::string application_id;
  std::string environment_id;
  v1::ApplicationEnvironmentStatus app_status;
  std::optional<v1::LiveState> live;  // unset when the deployer had none
  std::string live_error;             // why live state is missing, if it failed
  std::optional<v1::Revision> revision;  // the deployed commit, when the repo-watcher knows it
  std::optional<v1::Deployment> last_deployment;   // newest, any state
  std::optional<v1::Deployment> last_succeeded;    // newest that succeeded
  std::vector<v1::Plan> waiting;  // PENDING / APPROVED / EXECUTING plans, newest first
  std::optional<v1::Plan> latest_plan;  // the newest plan in any state (among the newest 1,000)
  std::string ref;                // the application's ref
  bool automated = false;
  bool self_heal = false;
};

struct FleetSnapshot {
  std::vector<StatusRow> rows;  // by application, then environment
  int applications = 0;
  int environments = 0;
  // What could not be read (the deployer down, say): the rest is still shown.
  std::vector<std::string> warnings;
};

struct SnapshotFilter {
  std::string application_id;
  std::string environment_id;
};

absl::StatusOr<FleetSnapshot> ReadFleet(Connection& conn, const SnapshotFilter& filter);

}  // namespace ferry::cli
