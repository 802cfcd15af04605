#pragma once

#include <functional>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/clock/clock.h"
#include "ferry/v1/planner.pb.h"
#include "services/planner/planner_events.h"
#include "services/planner/parse_limits.h"
#include "services/planner/planner_store.h"
#include "services/planner/repo_source.h"
#include "services/planner/revision_gate.h"
#include "services/planner/sync_window.h"

namespace ferry::planner {

// One job: reconciling a ferry.yaml at a commit with the catalog: the
// applications and environments it declares are created, updated or deleted
// in one atomic change (with audit events); the file is registered so that
// later revisions touching it reconcile it again. Holds no state of its own;
// thread-safe.
//
// Status codes: INVALID_ARGUMENT for a file that is missing, malformed or
// names a bad field; FAILED_PRECONDITION when it declares an id that exists
// and is not declared by this file; UNAVAILABLE when a peer is down.
class DeclarativeReconciler {
 public:
  // Plans the applications an applied ferry.yaml created or changed (at the
  // tip of each one's ref).
  using ReplanFn = std::function<absl::Status(const std::set<std::string>& application_ids)>;

  // `limits` bound reading the file, `windows` its environments' sync windows.
  // `gate` checks the commit of ApplyDeclarativeConfig (not of Reconcile,
  // which revisions from the repo-watcher's stream use).
  DeclarativeReconciler(CatalogStore* catalog, RepoSource* repo, RevisionGate* gate, const Clock* clock,
                        ReplanFn replan, ParseLimits limits = ParseLimits(), SyncWindowLimits windows = SyncWindowLimits())
      : catalog_(catalog),
        repo_(repo),
        gate_(gate),
        events_(clock),
        replan_(std::move(replan)),
        limits_(limits),
        windows_(windows) {}

  // Reads a ferry.yaml at a commit (the ref's tip when request.commit is
  // empty) and reconciles it; unless dry_run, applications that changed are
  // re-planned (a planning failure is logged, not returned). A commit the
  // repository's signature policy does not accept is refused first, dry run
  // or not (FAILED_PRECONDITION, audited; RevisionGate).
  absl::StatusOr<v1::ApplyDeclarativeConfigResponse> ApplyDeclarativeConfig(const v1::ApplyDeclarativeConfigRequest& request,
                                                                            const v1::Actor& actor);

  // Reconciles `source` (ref full, path normalised) at `commit`, recording
  // each change in `response`; with dry_run nothing is written. Returns the
  // ids of applications created or changed.
  absl::StatusOr<std::set<std::string>> Reconcile(const v1::DeclarationSource& source, const std::string& commit,
                                                  bool dry_run, const v1::Actor& actor,
                                                  v1::ApplyDeclarativeConfigResponse* response);

 private:
  CatalogStore* catalog_;
  RepoSource* repo_;
  RevisionGate* gate_;
  const PlannerEvents events_;
  const ReplanFn replan_;
  const ParseLimits limits_;
  const SyncWindowLimits windows_;
};

}  // namespace ferry::planner
