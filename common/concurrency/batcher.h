#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/concurrency/last_resort.h"
#include "common/concurrency/mutex.h"

namespace ferry::concurrency {

// Serves concurrent callers' requests in batches, each caller getting the
// answer to its own request (group commit with an answer per request, where
// GroupRunner has one answer for all). A caller that finds no batch running
// runs one on its own thread: every request queued by then, oldest first, up
// to `max_batch`, at most one per key (a request whose key is already in
// the batch waits for a later one, so two requests of one key are never
// run together and run in the order they came). Callers that arrive while a
// batch runs are served by the next: N concurrent callers cost about two
// runs, not N, and a caller alone runs at once, in a batch of one.
//
// `run` gets the batch's requests in order and returns one result per
// request, in the same order. `Result` is absl::Status or absl::StatusOr<T>:
// a `run` that throws, or returns another number of results, answers every
// request of its batch with INTERNAL (no exception leaves Run, and the
// batcher goes on). Batches never overlap. Thread-safe.
//
//   Batcher<Insert, absl::StatusOr<Row>> inserts(64, [&](std::vector<Insert*>& batch) {
//     return InsertAllInOneTransaction(batch);
//   });
//   absl::StatusOr<Row> row = inserts.Run(std::move(insert), key);
template <typename Request, typename Result>
class Batcher {
  static_assert(std::is_constructible_v<Result, absl::Status>, "Batcher: Result must be absl::Status or StatusOr");

 public:
  using RunFn = std::function<std::vector<Result>(std::vector<Request*>& batch)>;

  Batcher(size_t max_batch, RunFn run) : max_batch_(max_batch == 0 ? 1 : max_batch), run_(std::move(run)) {}
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Queues `request` and returns its result once a batch holding it has run
  // (on this thread or another caller's).
  Result Run(Request request, std::string key) {
    Entry entry{std::move(request), std::move(key), std::nullopt};
    mu_.Lock();
    queue_.push_back(&entry);
    while (!entry.result) {
      if (running_) {
        done_cv_.Wait(&mu_);
        continue;
      }
      running_ = true;
      std::vector<Entry*> batch = TakeBatch();
      ++batches_;
      if (batch.size() > 1) requests_batched_ += batch.size();
      mu_.Unlock();
      // The entries live on their callers' stacks, and those callers wait
      // for their results: the requests stay valid while the batch runs.
      std::vector<Request*> requests;
      requests.reserve(batch.size());
      for (Entry* e : batch) requests.push_back(&e->request);
      std::vector<Result> results;
      absl::Status ran = RunGuarded("a batch", [&] { results = run_(requests); });
      if (ran.ok() && results.size() != batch.size()) {
        ran = absl::InternalError(absl::StrCat("a batch of ", batch.size(), " requests returned ", results.size(),
                                               " results"));
      }
      mu_.Lock();
      for (size_t i = 0; i < batch.size(); ++i) {
        if (ran.ok()) {
          batch[i]->result.emplace(std::move(results[i]));
        } else {
          batch[i]->result.emplace(ran);
        }
      }
      running_ = false;
      done_cv_.SignalAll();
    }
    Result out = std::move(*entry.result);
    mu_.Unlock();
    return out;
  }

  // Batches run so far, and the requests that ran in batches of more than
  // one (for tests and metrics).
  uint64_t batches() const {
    MutexLock lock(&mu_);
    return batches_;
  }
  uint64_t requests_batched() const {
    MutexLock lock(&mu_);
    return requests_batched_;
  }
  // Requests queued and not yet taken into a batch (for tests).
  size_t queued() const {
    MutexLock lock(&mu_);
    return queue_.size();
  }

 private:
  struct Entry {
    Request request;
    std::string key;
    std::optional<Result> result;
  };

  // The oldest queued requests, up to max_batch_, one per key.
  std::vector<Entry*> TakeBatch() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<Entry*> batch;
    std::set<std::string> keys;
    for (auto it = queue_.begin(); it != queue_.end() && batch.size() < max_batch_;) {
      if (!keys.insert((*it)->key).second) {
        ++it;
        continue;
      }
      batch.push_back(*it);
      it = queue_.erase(it);
    }
    return batch;
  }

  const size_t max_batch_;
  const RunFn run_;
  mutable Mutex mu_;
  CondVar done_cv_;
  std::deque<Entry*> queue_ ABSL_GUARDED_BY(mu_);
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t batches_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t requests_batched_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ferry::concurrency
