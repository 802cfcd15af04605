#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/time/time.h"
#include "services/planner/planner_store.h"
#include "services/planner/repo_source.h"
#include "services/planner/revision_planner.h"

namespace ferry::planner {

// One job: consuming the repo-watcher's WatchRevisions stream on a
// background thread: resumes from the cursor persisted in the store, hands
// each revision to RevisionPlanner::HandleRevision and persists the cursor
// after it. A failed revision is retried (the cursor does not move); a
// dropped stream is reconnected with backoff. Thread-safe; Stop() is
// idempotent.
class RevisionConsumer {
 public:
  static constexpr char kCursorName[] = "repo_watcher";
  RevisionConsumer(RepoSource* repo, CursorStore* cursors, RevisionPlanner* planner);
  ~RevisionConsumer();
  void Start();
  void Stop();

 private:
  void Run();
  bool SleepUnlessStopped(absl::Duration d);

  RepoSource* repo_;
  CursorStore* cursors_;
  RevisionPlanner* planner_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  RevisionStream* active_ = nullptr;  // guarded by mu_
  std::thread thread_;
};

}  // namespace ferry::planner
