#pragma once

// Waiting for Ferry to do something, the way `sync --wait`, `rollback
// --wait` and `app wait` show it: a plan until it is released (saying once
// why it waits, and what to run), then its deployment step by step over
// WatchDeployment (reconnecting on a fresh snapshot when the stream breaks).
// On a terminal a status line is redrawn in place (wave, object, step,
// elapsed time) and each finished step stays as a line; elsewhere each
// finished step is one plain line; with -o json each event is one JSON
// object a line. Ctrl-C stops the waiting (Interrupted), never the
// deployment.

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/connection.h"
#include "cli/output.h"

namespace ferry::cli {

class DeploymentFollower {
 public:
  DeploymentFollower(Connection& conn, const Output& out, absl::Time deadline)
      : conn_(conn), out_(out), deadline_(deadline) {}

  // Waits until plan `plan_id` has a deployment (or ends without one: then
  // SUCCEEDED plans are returned as they are, others are WaitFailed), then
  // follows it. Returns the finished deployment.
  absl::StatusOr<v1::Deployment> FollowPlan(const std::string& plan_id);

  // Follows deployment `id` to its end. OK with the deployment when it
  // SUCCEEDED; WaitFailed naming it (and its rollback) when it FAILED or was
  // ROLLED_BACK; WaitTimedOut at the deadline; Interrupted on Ctrl-C.
  absl::StatusOr<v1::Deployment> Follow(const std::string& id);

  // How long FollowPlan waits for a deployment its plan names to be
  // recorded: the planner names it when the deployer acknowledges the plan,
  // a moment before the deployer records it.
  static constexpr absl::Duration kAwaitRecord = absl::Seconds(30);

 private:
  void Step(const v1::DeploymentStep& step);
  void Redraw(bool force);
  void ClearLine();
  absl::Status Stopped(const std::string& what) const;

  Connection& conn_;
  const Output& out_;
  absl::Time deadline_;
  v1::Deployment current_;
  std::map<int64_t, v1::DeploymentStep> steps_;
  std::string line_;  // the status line on screen, "" when none
  absl::Time started_ = absl::Now();
  bool named_by_plan_ = false;  // Follow was called by FollowPlan
  int frame_ = 0;
};

}  // namespace ferry::cli
