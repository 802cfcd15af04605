#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/time/time.h"
#include "common/postgres/connection_pool.h"
#include "common/postgres/notification_listener.h"
#include "services/planner/plan_notifier.h"
#include "services/planner/planner.h"
#include "services/planner/planner_store.h"
#include "services/planner/repo_source.h"

namespace ferry::planner {

// Consumes the repo-watcher's WatchRevisions stream on a background thread:
// resumes from the cursor persisted in the store, hands each revision to
// Planner::HandleRevision and persists the cursor after it. A failed
// revision is retried (the cursor does not move); a dropped stream is
// reconnected with backoff. Thread-safe; Stop() is idempotent.
class RevisionConsumer {
 public:
  static constexpr char kCursorName[] = "repo_watcher";
  RevisionConsumer(RepoSource* repo, PlannerStore* store, Planner* planner);
  ~RevisionConsumer();
  void Start();
  void Stop();

 private:
  void Run();
  bool SleepUnlessStopped(absl::Duration d);

  RepoSource* repo_;
  PlannerStore* store_;
  Planner* planner_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  RevisionStream* active_ = nullptr;  // guarded by mu_
  std::thread thread_;
};

// Re-evaluates held plans (sync windows open with time, promotion gates and
// dependencies with other plans) every `interval`. Thread-safe.
class HoldReleaser {
 public:
  HoldReleaser(Planner* planner, absl::Duration interval) : planner_(planner), interval_(interval) {}
  ~HoldReleaser();
  void Start();
  void Stop();

 private:
  Planner* planner_;
  const absl::Duration interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// LISTENs on the `planner_plans` PostgreSQL channel (NOTIFYed by
// PostgresPlannerStore when a plan is released) and wakes the local
// PlanNotifier, so that WatchApprovedPlans streams served by any replica
// learn of plans released by another at once. Thread-safe.
class PlanNotifyListener {
 public:
  static constexpr char kChannel[] = "planner_plans";
  PlanNotifyListener(postgres::ConnectionPool* pool, PlanNotifier* notifier)
      : listener_(pool, kChannel, [notifier] { notifier->Notify(); }) {}
  ~PlanNotifyListener();
  void Start();
  void Stop();

 private:
  postgres::NotificationListener listener_;
};

}  // namespace ferry::planner
