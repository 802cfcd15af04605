#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ferry/v1/audit.pb.h"
#include "ferry/v1/planner.pb.h"

namespace ferry::planner {

// A registered ferry.yaml.
struct DeclarationSourceRecord {
  std::string key;  // "<repository_id>:<ref>:<path>"
  v1::DeclarationSource source;  // ref full, path normalised, commit last reconciled
};

// One atomic change of applications and environments, with its audit events.
// Applied in this order: create/update environments, create/update
// applications, delete applications, delete environments, register source.
struct ConfigChange {
  std::vector<v1::Environment> create_environments;
  std::vector<v1::Environment> update_environments;
  std::vector<v1::Application> create_applications;
  std::vector<v1::Application> update_applications;
  std::vector<std::string> delete_applications;
  std::vector<std::string> delete_environments;
  // Updates made by merging into a stored spec: each applies only if the
  // stored spec is still this one (ABORTED otherwise), so that two
  // concurrent updates of different fields cannot lose one of them.
  std::map<std::string, v1::Application> expected_applications;
  std::map<std::string, v1::Environment> expected_environments;
  std::optional<DeclarationSourceRecord> source;
  std::vector<v1::Event> events;
  // Applied, in the same transaction, to every PENDING or APPROVED plan of a
  // deleted application; returns the audit events to enqueue.
  std::function<std::vector<v1::Event>(v1::Plan& plan)> close_open_plan;
};

struct PlanFilter {
  std::string application_id;           // "" = any
  std::string environment_id;           // "" = any
  std::vector<v1::PlanState> states;    // empty = any
  int limit = 50;
  int64_t before_seq = 0;               // page: plans older than this; 0 = newest
};

struct PlanPage {
  std::vector<v1::Plan> plans;  // newest first
  int64_t last_seq = 0;         // seq of the last plan returned; 0 when none
  bool more = false;            // more plans exist after this page
};

// A plan in the WatchApprovedPlans stream.
struct ReleasedPlan {
  int64_t release_seq = 0;
  v1::Plan plan;
};

// The planner's storage, split by what each component uses. Every write is
// one transaction that also enqueues its audit events in the outbox.
// Implementations are thread-safe. Errors: NOT_FOUND for unknown ids,
// ALREADY_EXISTS for taken ids, FAILED_PRECONDITION for an environment still
// in use, UNAVAILABLE when the database is unreachable.
// PostgresPlannerStore implements all of them (PlannerStore); tests use
// tests/planner/fake_planner_store.h.

// Applications, environments, declaration sources (ferry.yaml files) and
// audit events that accompany no state change.
class CatalogStore {
 public:
  virtual ~CatalogStore() = default;

  virtual absl::StatusOr<v1::Environment> GetEnvironment(const std::string& id) = 0;
  virtual absl::StatusOr<std::vector<v1::Environment>> ListEnvironments() = 0;  // by id
  virtual absl::StatusOr<v1::Application> GetApplication(const std::string& id) = 0;
  virtual absl::StatusOr<std::vector<v1::Application>> ListApplications() = 0;  // by id
  // At most `limit` applications with ids after `after_id` ("": from the
  // first), by id: one page read on the primary key, so that paging through
  // N applications reads each once rather than all N per page (issue #23).
  virtual absl::StatusOr<std::vector<v1::Application>> ListApplicationsAfter(const std::string& after_id,
                                                                             int limit) = 0;
  // The applications deploying from `ref` of `repository_id`, by id: what a
  // new revision there may touch, without reading every application.
  virtual absl::StatusOr<std::vector<v1::Application>> ListApplicationsOf(const std::string& repository_id,
                                                                          const std::string& ref) = 0;
  // The applications deploying from `ref` of `repository_id` that a
  // revision changing `changed_paths` (repository files) may touch, by id,
  // each with the input paths its last render read: at least every one with
  // a root (its path or an input path) that is a changed path or lies above
  // or below one. It may return more (callers re-check each): an index
  // lookup, so that a commit touching one application of 10,000 reads one
  // (issue #23).
  struct ApplicationRoots {
    v1::Application app;
    std::vector<std::string> input_paths;
  };
  virtual absl::StatusOr<std::vector<ApplicationRoots>> ListApplicationsTouchedBy(
      const std::string& repository_id, const std::string& ref, const std::vector<std::string>& changed_paths) = 0;
  // Those of `ids` that exist, by id (one query however many).
  virtual absl::StatusOr<std::vector<v1::Application>> GetApplications(const std::set<std::string>& ids) = 0;
  virtual absl::Status ApplyConfigChange(const ConfigChange& change) = 0;

  virtual absl::StatusOr<std::vector<DeclarationSourceRecord>> ListDeclarationSources() = 0;

  // Enqueues audit events that accompany no state change (a refused
  // ferry.yaml). ALREADY_EXISTS when an idempotency key was used before.
  virtual absl::Status RecordEvents(const std::vector<v1::Event>& events) = 0;
};

// What renders read and produced: the render cache and each application's
// input paths.
class RenderStore {
 public:
  virtual ~RenderStore() = default;

  // Repository paths beyond application.path that its last render read.
  virtual absl::StatusOr<std::vector<std::string>> GetInputPaths(const std::string& application_id) = 0;
  virtual absl::Status SetInputPaths(const std::string& application_id, const std::vector<std::string>& paths) = 0;
  // Input paths of every application, by application id.
  virtual absl::StatusOr<std::map<std::string, std::vector<std::string>>> ListInputPaths() = 0;
  // Input paths of the applications deploying from `ref` of `repository_id`.
  virtual absl::StatusOr<std::map<std::string, std::vector<std::string>>> ListInputPathsOf(
      const std::string& repository_id, const std::string& ref) = 0;

  virtual absl::StatusOr<std::optional<std::vector<v1::Manifest>>> GetCachedRender(const std::string& key) = 0;
  virtual absl::Status PutCachedRender(const std::string& key, const std::vector<v1::Manifest>& manifests) = 0;
  // Deletes the cached renders not used (written or read) for `unused_for`
  // and, when `keep_at_most` > 0, the least recently used beyond that many.
  // Returns how many went. The cache holds only what a render would give
  // again, so an evicted entry costs one render the next time it is needed.
  virtual absl::StatusOr<int64_t> EvictCachedRenders(absl::Duration unused_for, int64_t keep_at_most) = 0;
};

// Plans, their states and the release order (the WatchApprovedPlans stream).
class PlanStore {
 public:
  virtual ~PlanStore() = default;

  using PlanEventsFn = std::function<std::vector<v1::Event>(const v1::Plan& stored)>;
  using SupersededEventFn = std::function<v1::Event(const v1::Plan& superseded, const v1::Plan& by)>;
  // Assigns an id and persists `plan`. With supersede_open, older PENDING and
  // APPROVED plans of the same application and environment that were not yet
  // claimed become SUPERSEDED (superseded_by_plan_id set) in the same
  // transaction. A plan that is APPROVED without a hold is released (given
  // the next position in the WatchApprovedPlans stream) by the time it
  // returns, unless the release failed (the plan is then stored and the next
  // ReevaluateHolds pass releases it); concurrent inserts may share one
  // release.
  // Plans of one (application, environment) are inserted one at a time
  // (a transaction-scoped advisory lock). `definition_key` is stored with
  // the plan; with `dedupe`, returns ALREADY_EXISTS and inserts nothing when
  // a plan for the same commit and definition_key exists.
  virtual absl::StatusOr<v1::Plan> InsertPlan(v1::Plan plan, const std::string& definition_key, bool dedupe,
                                              bool supersede_open, const PlanEventsFn& events,
                                              const SupersededEventFn& superseded_event) = 0;

  // Reads the plan under a row lock, lets `mutate` change it (returning the
  // audit events to enqueue, or an error that aborts), and writes it back,
  // releasing it when it became APPROVED without a hold.
  using MutateFn = std::function<absl::StatusOr<std::vector<v1::Event>>(v1::Plan& plan)>;
  virtual absl::StatusOr<v1::Plan> MutatePlan(const std::string& id, const MutateFn& mutate) = 0;
  // As MutatePlan, for a change that is most often neither audited nor a
  // release (the deployer's acknowledgement and outcome of each plan): the
  // plan is read, and written back only while its row is still the version
  // read, by one statement each, without a transaction block or row lock
  // (two round trips instead of four per plan: issue #23). When `mutate`
  // returns events or an error, or leaves the plan releasable, or the plan
  // changed in between, the change is made again as MutatePlan: `mutate` may
  // be called twice, each time on a fresh copy of the stored plan, and only
  // the last call counts.
  virtual absl::StatusOr<v1::Plan> MutatePlanQuietly(const std::string& id, const MutateFn& mutate) {
    return MutatePlan(id, mutate);
  }
  // MutatePlanQuietly for each of `changes` (a plan id and its change), one
  // answer each, in order. A store may write several quiet changes in one
  // statement (issue #23: the outcomes of one ReportPlanResults call), and
  // call each `mutate` more than once (only the last call counts); the
  // changes of one plan are made in their order.
  using PlanChange = std::pair<std::string, MutateFn>;
  virtual std::vector<absl::StatusOr<v1::Plan>> MutatePlansQuietly(const std::vector<PlanChange>& changes) {
    std::vector<absl::StatusOr<v1::Plan>> out;
    out.reserve(changes.size());
    for (const auto& [id, mutate] : changes) out.push_back(MutatePlanQuietly(id, mutate));
    return out;
  }

  // Records `approval` of plan `id`, at most one per approver
  // (approval.actor().id()), and lets `decide` finish the change, in one
  // transaction under the plan's row lock, as MutatePlan. `decide` sees the
  // plan with `approvals` holding every approval recorded for it, oldest
  // first, this one included, and `added`: false when this approver's
  // approval was already recorded (nothing was added). An error from
  // `decide` records nothing. InsertPlan records the approvals a new plan
  // carries (PlanRevision with approve) the same way.
  using ApprovalFn = std::function<absl::StatusOr<std::vector<v1::Event>>(v1::Plan& plan, bool added)>;
  virtual absl::StatusOr<v1::Plan> RecordApproval(const std::string& id, const v1::PlanDecision& approval,
                                                  const ApprovalFn& decide) = 0;

  // The author of commit `sha` of `repository_id` as RecordCommitAuthor kept
  // it; nullopt when it was never recorded.
  virtual absl::StatusOr<std::optional<v1::CommitAuthor>> GetCommitAuthor(const std::string& repository_id,
                                                                          const std::string& sha) = 0;
  // Keeps the author of a commit seen in the repo-watcher's revision stream
  // (the first record stays: a commit's author never changes).
  virtual absl::Status RecordCommitAuthor(const std::string& repository_id, const std::string& sha,
                                          const v1::CommitAuthor& author) = 0;

  virtual absl::StatusOr<v1::Plan> GetPlan(const std::string& id) = 0;
  virtual absl::StatusOr<PlanPage> ListPlans(const PlanFilter& filter) = 0;
  // Released plans after `after_seq` that are still APPROVED or EXECUTING,
  // in release order: at most `limit`, and none past the first whose
  // encoding, with those before it, reaches `max_bytes` (so one plan always,
  // however large).
  virtual absl::StatusOr<std::vector<ReleasedPlan>> ListReleased(int64_t after_seq, int limit, int64_t max_bytes) = 0;
  // The release position of the oldest released plan still APPROVED or
  // EXECUTING, minus one; the newest position when there is none.
  virtual absl::StatusOr<int64_t> OldestUnfinishedRelease() = 0;
  // PENDING or APPROVED plans not yet released, oldest first.
  virtual absl::StatusOr<std::vector<v1::Plan>> ListUnreleased() = 0;
  // Whether a plan of (app, env) for commit `sha` reached SUCCEEDED.
  virtual absl::StatusOr<bool> HasSucceeded(const std::string& app, const std::string& env, const std::string& sha) = 0;
  // Whether a plan of (application, environment) exists for commit `sha`
  // and definition_key, for each of `keys` (in their order), in one read:
  // a commit touching 10,000 applications asks for all of them at once
  // (issue #23).
  struct PlanKey {
    std::string application_id;
    std::string environment_id;
    std::string sha;
    std::string definition_key;
  };
  virtual absl::StatusOr<std::vector<bool>> HavePlansFor(const std::vector<PlanKey>& keys) = 0;
};

// What a stream consumer recorded about the item it is working on.
struct ItemAttempts {
  // Attempts recorded before this one that never ended (EndAttempt or
  // AdvanceCursor): the process crashed or was killed mid-item, or the
  // handler threw.
  int unfinished = 0;
  std::string last_error;  // the last error recorded for the item; "" when none
};

// Named positions in the streams the planner consumes (the repo-watcher's
// revisions), and the attempts at the item after each position (poison
// isolation: RevisionConsumer).
class CursorStore {
 public:
  virtual ~CursorStore() = default;

  virtual absl::StatusOr<std::string> GetCursor(const std::string& name) = 0;  // "" when unset
  virtual absl::Status SetCursor(const std::string& name, const std::string& value) = 0;

  // Records, before its handler runs, one more attempt of consumer `name` at
  // the item `item_key`, and returns what was recorded about it before. One
  // item per consumer: an attempt at another item forgets the previous one.
  virtual absl::StatusOr<ItemAttempts> BeginAttempt(const std::string& name, const std::string& item_key) = 0;
  // The attempt at `item_key` ended with `error`. Unless `counted` (the
  // handler threw) it does not count against the item: its record is taken
  // back. The error is kept either way.
  virtual absl::Status EndAttempt(const std::string& name, const std::string& item_key, bool counted,
                                  const std::string& error) = 0;
  // Moves the cursor of `name` to `value` (past the item), forgets the
  // item's attempts and enqueues `events` (a failed or quarantined item's),
  // in one transaction.
  virtual absl::Status AdvanceCursor(const std::string& name, const std::string& value,
                                     const std::vector<v1::Event>& events) = 0;
};

// All of the planner's storage in one (what a database implements).
class PlannerStore : public CatalogStore, public RenderStore, public PlanStore, public CursorStore {};

}  // namespace ferry::planner
