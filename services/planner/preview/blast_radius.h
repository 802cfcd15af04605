#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/clock/clock.h"
#include "ferry/v1/planner.pb.h"
#include "ferry/v1/repo_watcher.pb.h"
#include "services/planner/approval_policy.h"
#include "services/planner/parse_limits.h"
#include "services/planner/planner_store.h"
#include "services/planner/preview/snapshot_repo_source.h"
#include "services/planner/renderer.h"
#include "services/planner/sync_window.h"

namespace ferry::planner {

struct BlastRadiusOptions {
  int concurrency = 8;  // applications compared at once (--plan-concurrency)
  ParseLimits parse_limits;
  SyncWindowLimits window_limits;
};

// One job: the blast radius of a pull request: every (application,
// environment) whose rendered manifests the change from base_sha to
// head_sha alters, with the per-object actions (Secret values as digests),
// render failures, and the policy holds a plan of the head would meet
// (approval, sync windows, promotion, dependsOn, required checks).
//
// Which applications: those of the pull request's repository deploying its
// base branch, as the catalog has them, changed by the head's ferry.yaml
// files (declaration sources of that repository and branch): added, removed
// and redefined applications are always entries.
//
// Never skips an application whose inputs may have changed: the changed
// paths (the two commits' trees compared) are only a prefilter against the
// application's inputs AT THE BASE (its folder, Kustomize bases and
// resources followed transitively, Helm values files), which are exactly
// what decides the inputs at the head: if none of those paths changed, the
// same files are read at both commits. Applications that pass the prefilter
// have their inputs collected at the head too; equal content hashes mean
// equal renders. The rest are rendered at both commits through the render
// cache (RenderStore) and diffed. Holds no state; thread-safe.
class BlastRadius {
 public:
  // `snapshot` and `renderer` read Git (the renderer over the snapshot);
  // `approvals` may be null (one approval by anyone).
  BlastRadius(CatalogStore* catalog, RenderStore* renders, SnapshotRepoSource* snapshot, Renderer* renderer,
              const ApprovalPolicy* approvals, const Clock* clock, BlastRadiusOptions options = BlastRadiusOptions());

  // INVALID_ARGUMENT when the pull request lacks repository, number, shas
  // or base ref; NOT_FOUND when a commit is not in the mirror; UNAVAILABLE
  // when the repo-watcher or the database cannot answer (retry). Render
  // failures are entries, not errors.
  absl::StatusOr<v1::PullRequestPreview> Compute(const v1::PullRequest& pr);

 private:
  CatalogStore* catalog_;
  RenderStore* renders_;
  SnapshotRepoSource* snapshot_;
  Renderer* renderer_;
  const ApprovalPolicy* approvals_;
  const Clock* clock_;
  const BlastRadiusOptions options_;
};

// The holds a plan of `app` in `env` would meet at `now` (exposed for tests).
std::vector<v1::PreviewHold> PreviewHolds(const v1::Application& app, const v1::Environment& env,
                                          const ApprovalPolicy* approvals, absl::Time now);

}  // namespace ferry::planner
