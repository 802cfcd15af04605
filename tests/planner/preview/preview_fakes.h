#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "common/concurrency/mutex.h"
#include "services/planner/preview/preview_commenter.h"
#include "services/planner/preview/preview_store.h"
#include "services/planner/preview/review_event_source.h"

namespace ferry::planner::testing {

// PreviewStore in memory. Thread-safe.
class FakePreviewStore final : public PreviewStore {
 public:
  absl::Status PutPreview(const v1::PullRequestPreview& preview) override {
    MutexLock lock(&mu_);
    previews_[{preview.repository_id(), preview.number()}] = preview;
    return absl::OkStatus();
  }
  absl::Status DeletePreview(const std::string& repository_id, int64_t number) override {
    MutexLock lock(&mu_);
    previews_.erase({repository_id, number});
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<v1::PullRequestPreview>> GetPreview(const std::string& repository_id,
                                                                   int64_t number) override {
    MutexLock lock(&mu_);
    auto it = previews_.find({repository_id, number});
    if (it == previews_.end()) return std::optional<v1::PullRequestPreview>();
    return std::optional<v1::PullRequestPreview>(it->second);
  }
  absl::StatusOr<std::vector<v1::PullRequestPreview>> ListPreviews(const std::string& repository_id) override {
    MutexLock lock(&mu_);
    std::vector<v1::PullRequestPreview> out;
    for (const auto& [key, p] : previews_)
      if (key.first == repository_id) out.push_back(p);
    return out;
  }

 private:
  Mutex mu_;
  std::map<std::pair<std::string, int64_t>, v1::PullRequestPreview> previews_ ABSL_GUARDED_BY(mu_);
};

// Records every comment it is asked to post; ids "c-1", "c-2"... Thread-safe.
class FakeCommenter final : public PreviewCommenter {
 public:
  absl::StatusOr<std::string> Upsert(const std::string& repository_id, int64_t number, const std::string& comment_id,
                                     const std::string& body) override {
    MutexLock lock(&mu_);
    calls_.push_back({repository_id, number, comment_id, body});
    if (!fail_.ok()) return fail_;
    return comment_id.empty() ? absl::StrCat("c-", ++next_) : comment_id;
  }
  struct Call {
    std::string repository_id;
    int64_t number;
    std::string comment_id;
    std::string body;
  };
  std::vector<Call> calls() {
    MutexLock lock(&mu_);
    return calls_;
  }
  void Fail(absl::Status s) {
    MutexLock lock(&mu_);
    fail_ = std::move(s);
  }

 private:
  Mutex mu_;
  std::vector<Call> calls_ ABSL_GUARDED_BY(mu_);
  int next_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status fail_ ABSL_GUARDED_BY(mu_);
};

// WatchReviewEvents in memory: Publish() appends an event with the next
// cursor ("1", "2", ...); a stream delivers the events after its cursor,
// then waits for more until cancelled. Thread-safe.
class FakeReviewEventSource final : public ReviewEventSource {
 public:
  void Publish(v1::WatchReviewEventsResponse event) {
    MutexLock lock(&mu_);
    event.set_cursor(absl::StrCat(events_.size() + 1));
    events_.push_back(std::move(event));
    cv_.SignalAll();
  }
  std::unique_ptr<ReviewEventStream> WatchReviewEvents(const std::string& cursor) override {
    MutexLock lock(&mu_);
    opened_with_.push_back(cursor);
    return std::make_unique<Stream>(this, cursor.empty() ? 0 : std::stoul(cursor));
  }
  std::vector<std::string> opened_with() {
    MutexLock lock(&mu_);
    return opened_with_;
  }

 private:
  class Stream final : public ReviewEventStream {
   public:
    Stream(FakeReviewEventSource* source, size_t next) : source_(source), next_(next) {}
    bool Next(v1::WatchReviewEventsResponse* event) override {
      MutexLock lock(&source_->mu_);
      while (!cancelled_ && next_ >= source_->events_.size()) source_->cv_.Wait(&source_->mu_);
      if (cancelled_) return false;
      *event = source_->events_[next_++];
      return true;
    }
    void Cancel() override {
      MutexLock lock(&source_->mu_);
      cancelled_ = true;
      source_->cv_.SignalAll();
    }
    absl::Status Finish() override { return absl::CancelledError("cancelled"); }

   private:
    FakeReviewEventSource* source_;
    size_t next_;
    bool cancelled_ = false;  // under source_->mu_
  };

  Mutex mu_;
  CondVar cv_;
  std::vector<v1::WatchReviewEventsResponse> events_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> opened_with_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::planner::testing
