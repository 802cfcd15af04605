#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "common/concurrency/mutex.h"
#include "services/planner/check_source.h"

namespace ferry::planner::testing {

// An in-memory repo-watcher's check records: Report() keeps the latest
// result per (repository, sha, name), as ReportCheck does, and appends a
// review event that WatchReviewEvents streams deliver (cursor n = after the
// n-th event). FailWith() makes ListChecks fail. Thread-safe.
class FakeCheckSource final : public CheckSource {
 public:
  v1::CommitCheck Report(const std::string& repo, const std::string& sha, const std::string& name,
                         v1::CheckState state, const std::string& url = "") {
    MutexLock lock(&mu_);
    v1::CommitCheck c;
    c.set_repository_id(repo);
    c.set_sha(sha);
    c.set_name(name);
    c.set_state(state);
    c.set_url(url);
    c.set_source("api");
    c.mutable_report_time()->set_seconds(++reports_);
    checks_[absl::StrCat(repo, "\n", sha)][name] = c;
    v1::WatchReviewEventsResponse e;
    e.set_cursor(absl::StrCat(events_.size() + 1));
    *e.mutable_check() = c;
    events_.push_back(e);
    cv_.SignalAll();
    return c;
  }
  // A pull-request event (the planner passes over it).
  void PullRequestEvent(const std::string& repo, int64_t number) {
    MutexLock lock(&mu_);
    v1::WatchReviewEventsResponse e;
    e.set_cursor(absl::StrCat(events_.size() + 1));
    e.mutable_pull_request()->set_repository_id(repo);
    e.mutable_pull_request()->set_number(number);
    events_.push_back(e);
    cv_.SignalAll();
  }
  // ListChecks fails with `status` from now on; OK ends that.
  void FailWith(absl::Status status) {
    MutexLock lock(&mu_);
    if (status.ok()) {
      fail_.reset();
    } else {
      fail_ = std::move(status);
    }
  }
  int list_calls() {
    MutexLock lock(&mu_);
    return list_calls_;
  }
  // Blocks until a stream waits in Next with every event delivered (and
  // so handled by its consumer).
  void AwaitIdleStream() {
    MutexLock lock(&mu_);
    while (idle_ == 0 || idle_next_ != events_.size()) cv_.Wait(&mu_);
  }

  absl::StatusOr<std::vector<v1::CommitCheck>> ListChecks(const std::string& repo, const std::string& sha) override {
    MutexLock lock(&mu_);
    ++list_calls_;
    if (fail_) return *fail_;
    std::vector<v1::CommitCheck> out;
    auto it = checks_.find(absl::StrCat(repo, "\n", sha));
    if (it != checks_.end())
      for (const auto& [name, c] : it->second) out.push_back(c);
    return out;
  }

  class Stream final : public ReviewEventStream {
   public:
    Stream(FakeCheckSource* owner, size_t next) : owner_(owner), next_(next) {}
    bool Next(v1::WatchReviewEventsResponse* event) override {
      MutexLock lock(&owner_->mu_);
      while (!cancelled_ && next_ >= owner_->events_.size()) {
        ++owner_->idle_;
        owner_->idle_next_ = next_;
        owner_->cv_.SignalAll();
        owner_->cv_.Wait(&owner_->mu_);
        --owner_->idle_;
      }
      if (cancelled_) return false;
      *event = owner_->events_[next_++];
      return true;
    }
    void Cancel() override {
      MutexLock lock(&owner_->mu_);
      cancelled_ = true;
      owner_->cv_.SignalAll();
    }
    absl::Status Finish() override { return absl::CancelledError("cancelled"); }

   private:
    FakeCheckSource* owner_;
    size_t next_;
    bool cancelled_ ABSL_GUARDED_BY(owner_->mu_) = false;
  };

  std::unique_ptr<ReviewEventStream> WatchReviewEvents(const std::string& cursor) override {
    MutexLock lock(&mu_);
    ++watches_;
    return std::make_unique<Stream>(this, cursor.empty() ? 0 : std::stoul(cursor));
  }
  int watches() {
    MutexLock lock(&mu_);
    return watches_;
  }

 private:
  Mutex mu_;
  CondVar cv_;
  std::map<std::string, std::map<std::string, v1::CommitCheck>> checks_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::WatchReviewEventsResponse> events_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> fail_ ABSL_GUARDED_BY(mu_);
  int64_t reports_ ABSL_GUARDED_BY(mu_) = 0;
  int list_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int idle_ ABSL_GUARDED_BY(mu_) = 0;
  size_t idle_next_ ABSL_GUARDED_BY(mu_) = 0;
  int watches_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ferry::planner::testing
