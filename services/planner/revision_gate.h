#pragma once

#include <string>

#include "absl/status/status.h"
#include "common/clock/clock.h"
#include "ferry/v1/audit.pb.h"
#include "ferry/v1/planner.pb.h"
#include "services/planner/planner_events.h"
#include "services/planner/planner_store.h"
#include "services/planner/repo_source.h"

namespace ferry::planner {

// One job: refusing a revision that a request names but may not use, before
// anything is planned, previewed or reconciled at it:
//   - a commit its repository's signature policy does not accept (the
//     repo-watcher's CheckRevision), for PlanRevision of every kind,
//     PreviewPlan and ApplyDeclarativeConfig;
//   - a rollback to a revision that was never deployed in that environment
//     (no plan of the application and environment at that commit reached
//     SUCCEEDED).
// A refusal is FAILED_PRECONDITION and writes an AUDIT_ACTION_REVISION_REFUSED
// event (through CatalogStore::RecordEvents, the outbox) naming the caller,
// the revision and why. Revisions from the repo-watcher's stream were
// accepted by the policy already and do not pass here. Stateless; thread-safe.
class RevisionGate {
 public:
  // What the revision is wanted for: the event's subject and details.
  struct Use {
    std::string call;  // the RPC: "PlanRevision", "PreviewPlan", "ApplyDeclarativeConfig"
    v1::Actor actor;   // who asked (the system actor when empty)
    std::string repository_id;
    std::string ref;  // full ref name when the revision was named by ref; may be empty
    std::string sha;
    std::string application_id;  // may be empty (ApplyDeclarativeConfig)
    std::string environment_id;  // may be empty
    std::string path;            // the ferry.yaml, for ApplyDeclarativeConfig
  };

  RevisionGate(CatalogStore* catalog, PlanStore* plans, RepoSource* repo, const Clock* clock)
      : catalog_(catalog), plans_(plans), repo_(repo), events_(clock) {}

  // OK when the repository's signature policy accepts use.sha.
  // FAILED_PRECONDITION "revision <sha> of repository <id> is not accepted by
  // its signature policy: <reason>" (audited) otherwise; the repo-watcher's
  // errors as they come (NOT_FOUND: not in the mirror; UNAVAILABLE: retry).
  absl::Status CheckSignaturePolicy(const Use& use);

  // OK when use.sha was deployed successfully before for use.application_id
  // in use.environment_id; FAILED_PRECONDITION naming the application, the
  // environment and the revision (audited) otherwise.
  absl::Status CheckRollbackTarget(const Use& use);

 private:
  // Records the refusal's audit event (a failure to record is logged: the
  // request is refused either way) and returns FAILED_PRECONDITION(message).
  absl::Status Refuse(const Use& use, const std::string& why, const std::string& message,
                      const v1::CheckRevisionResponse* verdict);

  CatalogStore* catalog_;
  PlanStore* plans_;
  RepoSource* repo_;
  const PlannerEvents events_;
};

}  // namespace ferry::planner
