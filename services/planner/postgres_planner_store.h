#pragma once

#include <atomic>

#include "common/clock/clock.h"
#include "common/concurrency/batcher.h"
#include "common/concurrency/group_runner.h"
#include "common/outbox/outbox_store.h"
#include "common/postgres/connection_pool.h"
#include "services/planner/plan_version_cache.h"
#include "services/planner/planner_store.h"

namespace ferry::planner {

// PlannerStore on the `planner` schema (schema/002_planner.sql). Audit
// events go to `outbox` in the same transaction as the change. Thread-safe.
class PostgresPlannerStore final : public PlannerStore {
 public:
  // The channel NOTIFYed when a plan is released, waking
  // the WatchApprovedPlans streams of every replica.
  static constexpr char kPlansChannel[] = "planner_plans";

  PostgresPlannerStore(postgres::ConnectionPool* pool, outbox::OutboxStore* outbox);

  absl::StatusOr<v1::Environment> GetEnvironment(const std::string& id) override;
  absl::StatusOr<std::vector<v1::Environment>> ListEnvironments() override;
  absl::StatusOr<v1::Application> GetApplication(const std::string& id) override;
  absl::StatusOr<std::vector<v1::Application>> ListApplications() override;
  absl::StatusOr<std::vector<v1::Application>> ListApplicationsAfter(const std::string& after_id, int limit) override;
  absl::StatusOr<std::vector<v1::Application>> ListApplicationsOf(const std::string& repository_id,
                                                                  const std::string& ref) override;
  absl::StatusOr<std::vector<ApplicationRoots>> ListApplicationsTouchedBy(
      const std::string& repository_id, const std::string& ref, const std::vector<std::string>& changed_paths) override;
  absl::StatusOr<std::vector<v1::Application>> GetApplications(const std::set<std::string>& ids) override;
  absl::Status ApplyConfigChange(const ConfigChange& change) override;
  absl::StatusOr<std::vector<std::string>> GetInputPaths(const std::string& application_id) override;
  absl::Status SetInputPaths(const std::string& application_id, const std::vector<std::string>& paths) override;
  absl::StatusOr<std::map<std::string, std::vector<std::string>>> ListInputPaths() override;
  absl::StatusOr<std::map<std::string, std::vector<std::string>>> ListInputPathsOf(const std::string& repository_id,
                                                                                   const std::string& ref) override;
  absl::StatusOr<std::vector<DeclarationSourceRecord>> ListDeclarationSources() override;
  absl::Status RecordEvents(const std::vector<v1::Event>& events) override;
  absl::StatusOr<v1::Plan> InsertPlan(v1::Plan plan, const std::string& definition_key, bool dedupe, bool supersede_open,
                                      const PlanEventsFn& events,
                                      const SupersededEventFn& superseded_event) override;
  absl::StatusOr<v1::Plan> MutatePlan(const std::string& id, const MutateFn& mutate) override;
  absl::StatusOr<v1::Plan> MutatePlanQuietly(const std::string& id, const MutateFn& mutate) override;
  // The changes of plans whose version this store wrote last (and none
  // before in `changes`) in one statement checked as MutatePlanQuietly's
  // write; the others, and any whose version was outdated, one by one.
  std::vector<absl::StatusOr<v1::Plan>> MutatePlansQuietly(const std::vector<PlanChange>& changes) override;
  absl::StatusOr<v1::Plan> RecordApproval(const std::string& id, const v1::PlanDecision& approval,
                                          const ApprovalFn& decide) override;
  absl::StatusOr<std::optional<v1::CommitAuthor>> GetCommitAuthor(const std::string& repository_id,
                                                                  const std::string& sha) override;
  absl::Status RecordCommitAuthor(const std::string& repository_id, const std::string& sha,
                                  const v1::CommitAuthor& author) override;
  absl::StatusOr<v1::Plan> GetPlan(const std::string& id) override;
  absl::StatusOr<PlanPage> ListPlans(const PlanFilter& filter) override;
  absl::StatusOr<std::vector<ReleasedPlan>> ListReleased(int64_t after_seq, int limit, int64_t max_bytes) override;
  absl::StatusOr<int64_t> OldestUnfinishedRelease() override;
  absl::StatusOr<std::vector<v1::Plan>> ListUnreleased() override;
  absl::StatusOr<bool> HasSucceeded(const std::string& app, const std::string& env, const std::string& sha) override;
  absl::StatusOr<std::vector<bool>> HavePlansFor(const std::vector<PlanKey>& keys) override;
  absl::StatusOr<std::optional<std::vector<v1::Manifest>>> GetCachedRender(const std::string& key) override;
  absl::Status PutCachedRender(const std::string& key, const std::vector<v1::Manifest>& manifests) override;
  absl::StatusOr<int64_t> EvictCachedRenders(absl::Duration unused_for, int64_t keep_at_most) override;
  absl::StatusOr<std::string> GetCursor(const std::string& name) override;
  absl::Status SetCursor(const std::string& name, const std::string& value) override;
  absl::StatusOr<ItemAttempts> BeginAttempt(const std::string& name, const std::string& item_key) override;
  absl::Status EndAttempt(const std::string& name, const std::string& item_key, bool counted,
                          const std::string& error) override;
  absl::Status AdvanceCursor(const std::string& name, const std::string& value,
                             const std::vector<v1::Event>& events) override;

  // Test seam: a store that leaves the plans it inserts unreleased, as a
  // planner stopped between a plan's insert and its release does.
  void set_release_after_insert_for_test(bool release) { release_after_insert_ = release; }
  // MutatePlanQuietly calls that wrote without reading the plan first (the
  // version this store wrote last was still the row's).
  int64_t quiet_writes_unread() const { return quiet_writes_unread_.load(); }
  // Plans changed quietly by a statement that wrote several (test-visible).
  int64_t quiet_writes_batched() const { return quiet_writes_batched_.load(); }
  // Plans inserted by a transaction that inserted several, and InsertPlan
  // calls waiting for their batch (test-visible).
  int64_t inserts_batched() const { return inserts_batched_.load(); }
  size_t inserts_queued() const { return inserts_.queued(); }
  // Render cache entries written by a statement that wrote several, and
  // PutCachedRender calls waiting for their batch (test-visible).
  int64_t cache_puts_batched() const { return static_cast<int64_t>(cache_puts_.requests_batched()); }
  // GetCachedRender calls answered by a statement that answered others too
  // (test-visible).
  int64_t cache_gets_batched() const { return cache_gets_batched_.load(); }
  size_t cache_gets_queued() const { return cache_gets_.queued(); }
  size_t cache_puts_queued() const { return cache_puts_.queued(); }

  // Concurrent InsertPlans of up to this many plans share one transaction,
  // each plan's body at most kMaxBatchedPlanBytes (a larger one is inserted
  // alone: a batch's bodies travel as base64 text).
  static constexpr size_t kMaxInsertBatch = 32;
  static constexpr size_t kMaxBatchedPlanBytes = size_t{64} << 10;
  // Concurrent PutCachedRenders share one statement, up to this many
  // entries of at most kMaxBatchedPlanBytes each (a larger one is written
  // alone).
  static constexpr size_t kMaxCachePutBatch = 32;
  // Quiet plan changes (MutatePlanQuietly) in one statement, at most.
  static constexpr size_t kMaxQuietChangeBatch = 64;

 private:
  // Releases (one transaction, one release-order lock) every plan approved
  // without a hold and not yet released.
  absl::Status ReleaseReady();
  // One InsertPlan call's arguments, waiting in inserts_ for its batch (the
  // pointers are the caller's, which waits for the batch).
  struct PlanInsert {
    v1::Plan plan;
    const std::string* definition_key;
    bool dedupe;
    bool supersede_open;
    const PlanEventsFn* events;
    const SupersededEventFn* superseded_event;
  };
  // Marks the open plan `old_body` (read under its row lock) superseded by
  // `by`, and adds its event to `events`.
  absl::Status Supersede(pqxx::work& txn, const pqxx::field& old_body, const v1::Plan& by,
                         const SupersededEventFn& superseded_event, std::vector<v1::Event>& events);
  // Inserts one plan in a transaction of its own.
  absl::StatusOr<v1::Plan> InsertPlanUnreleased(const PlanInsert& insert);
  // Inserts a batch of plans (of distinct (application, environment)s) in
  // one transaction with a handful of statements, where each alone takes
  // seven round trips (issue #23); when that transaction fails, each alone,
  // so that each gets its own answer.
  std::vector<absl::StatusOr<v1::Plan>> InsertPlansUnreleased(std::vector<PlanInsert*>& batch);
  // One PutCachedRender call's entry, waiting in cache_puts_ for its batch.
  struct CachePut {
    std::string key;
    std::string manifests;  // a serialized v1::Plan holding them
  };
  // Writes one entry, or a batch of them in one statement (issue #23: one
  // statement each was a transaction per application planned); each gets
  // the statement's answer.
  absl::Status PutCachedRenderAlone(const CachePut& put);
  // Reads one entry, or several in one statement (issue #23: the plans of a
  // commit are made at once, each reading its render's entry).
  using CachedRender = absl::StatusOr<std::optional<std::vector<v1::Manifest>>>;
  CachedRender GetCachedRenderAlone(const std::string& key);
  std::vector<CachedRender> GetCachedRenders(std::vector<std::string*>& keys);
  std::vector<absl::Status> PutCachedRenders(std::vector<CachePut*>& batch);
  absl::Status EnqueueAll(pqxx::work& txn, const std::vector<v1::Event>& events);
  absl::Status WritePlan(pqxx::work& txn, const v1::Plan& plan);
  // MutatePlanQuietly of one change, not shared with others' (the batch of
  // one of quiet_changes_, and each change MutatePlansQuietly makes alone).
  absl::StatusOr<v1::Plan> MutatePlanQuietlyAlone(const std::string& id, const MutateFn& mutate);
  // Inserts `approval` of `plan_id` unless its approver's is recorded;
  // whether it was added.
  bool InsertApproval(pqxx::work& txn, const std::string& plan_id, const v1::PlanDecision& approval);

  postgres::ConnectionPool* pool_;
  outbox::OutboxStore* outbox_;
  // Concurrent InsertPlans share one release transaction (group commit).
  concurrency::GroupRunner release_;
  // Concurrent InsertPlans share one insert transaction (one per
  // (application, environment) in each, as their advisory lock would order
  // them anyway).
  concurrency::Batcher<PlanInsert, absl::StatusOr<v1::Plan>> inserts_;
  std::atomic<int64_t> inserts_batched_{0};
  // Concurrent PutCachedRenders share one statement (one per key in each).
  concurrency::Batcher<CachePut, absl::Status> cache_puts_;
  // Concurrent GetCachedRenders share one statement.
  concurrency::Batcher<std::string, CachedRender> cache_gets_;
  std::atomic<int64_t> cache_gets_batched_{0};
  bool release_after_insert_ = true;
  // What this store wrote last of each plan (MutatePlanQuietly's guess of
  // the row's version): bodies up to 64 KiB, 8 MiB in all, 5 minutes.
  SystemClock clock_;
  PlanVersionCache versions_{size_t{8} << 20, size_t{64} << 10, absl::Minutes(5), &clock_};
  std::atomic<int64_t> quiet_writes_unread_{0};
  std::atomic<int64_t> quiet_writes_batched_{0};
  // Concurrent MutatePlanQuietly calls (the deployers' acknowledgements,
  // issue #23) go together through MutatePlansQuietly, one per plan each.
  concurrency::Batcher<PlanChange, absl::StatusOr<v1::Plan>> quiet_changes_;
};

}  // namespace ferry::planner
