#include "services/planner/revision_consumer.h"

#include <algorithm>
#include <memory>

#include "common/logging/logger.h"

namespace ferry::planner {

RevisionConsumer::RevisionConsumer(RepoSource* repo, CursorStore* cursors, RevisionPlanner* planner)
    : repo_(repo), cursors_(cursors), planner_(planner) {}

RevisionConsumer::~RevisionConsumer() { Stop(); }

void RevisionConsumer::Start() { thread_ = std::thread([this] { Run(); }); }

void RevisionConsumer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    if (active_) active_->Cancel();
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

bool RevisionConsumer::SleepUnlessStopped(absl::Duration d) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, absl::ToChronoMilliseconds(d), [&] { return stop_; });
  return !stop_;
}

void RevisionConsumer::Run() {
  absl::Duration backoff = absl::Milliseconds(500);
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
    }
    absl::StatusOr<std::string> cursor = cursors_->GetCursor(kCursorName);
    if (!cursor.ok()) {
      logging::Warn("cannot read the revision cursor", {{"error", cursor.status().ToString()}});
      if (!SleepUnlessStopped(backoff)) return;
      continue;
    }
    std::unique_ptr<RevisionStream> stream = repo_->WatchRevisions(*cursor);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) {
        stream->Cancel();
        return;
      }
      active_ = stream.get();
    }
    v1::Revision revision;
    bool failed = false;
    const absl::Time opened = absl::Now();
    while (stream->Next(&revision)) {
      absl::StatusOr<int> planned = planner_->HandleRevision(revision);
      if (!planned.ok()) {
        logging::Warn("revision not planned; will retry",
                      {{"revision", revision.id()}, {"sha", revision.sha()}, {"error", planned.status().ToString()}});
        failed = true;
        break;
      }
      if (*planned > 0)
        logging::Info("revision planned", {{"sha", revision.sha()}, {"ref", revision.ref()}, {"plans", *planned}});
      absl::Status s = cursors_->SetCursor(kCursorName, revision.cursor());
      if (!s.ok()) {
        logging::Warn("cannot persist the revision cursor", {{"error", s.ToString()}});
        failed = true;
        break;
      }
      backoff = absl::Milliseconds(500);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      active_ = nullptr;
      if (stop_) {
        stream->Cancel();
        return;
      }
    }
    stream->Cancel();
    absl::Status end = stream->Finish();
    if (!failed) logging::Info("revision stream ended; reconnecting", {{"status", end.ToString()}});
    // A stream that stayed up a while was healthy: reconnect quickly.
    if (!failed && absl::Now() - opened > absl::Seconds(10)) backoff = absl::Milliseconds(500);
    if (!SleepUnlessStopped(backoff)) return;
    backoff = std::min(backoff * 2, absl::Seconds(30));
  }
}

}  // namespace ferry::planner
