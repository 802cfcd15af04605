#include "services/audit/appender.h"

#include <map>
#include <utility>

#include <google/protobuf/util/time_util.h>

#include "absl/strings/str_cat.h"
#include "common/logging/logger.h"
#include "services/audit/event_chain.h"

namespace ferry::audit {
namespace {

constexpr size_t kMaxEventsPerCommit = 5000;
constexpr int kAttempts = 5;

using Key = std::pair<std::string, std::string>;

google::protobuf::Timestamp MicrosecondTimestamp(absl::Time t) {
  return google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

}  // namespace

Appender::Appender(EventStore& store, const Clock& clock, AuditMetrics* metrics)
    : store_(store),
      clock_(clock),
      metrics_(metrics),
      thread_([this] { Run(); }),
      flusher_([this] { RunFlusher(); }) {}

Appender::~Appender() { Stop(); }

void Appender::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    ++generation_;
  }
  queue_cv_.notify_all();
  commit_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Groups already committed are still flushed and answered.
  {
    std::lock_guard<std::mutex> lock(mu_);
    flusher_stopping_ = true;
  }
  flush_cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
}

void Appender::RunFlusher() {
  for (;;) {
    std::deque<Committed> groups;
    {
      std::unique_lock<std::mutex> lock(mu_);
      flush_cv_.wait(lock, [&] { return flusher_stopping_ || !committed_groups_.empty(); });
      if (committed_groups_.empty()) return;
      groups.swap(committed_groups_);
    }
    absl::Status flushed = store_.FlushWal();
    if (flushed.ok()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        committed_ = std::max(committed_, groups.back().tip);
      }
      commit_cv_.notify_all();
    } else {
      logging::Warn("append durability unknown; callers will retry", {{"error", flushed.ToString()}});
    }
    for (Committed& g : groups) {
      if (flushed.ok() && metrics_ != nullptr) {
        for (v1::AuditAction a : g.appended) metrics_->CountAppended(a);
      }
      for (size_t i = 0; i < g.batch.size(); ++i) {
        if (flushed.ok()) {
          g.batch[i]->done.set_value(std::move(g.results[i]));
        } else {
          g.batch[i]->done.set_value(flushed);
        }
      }
    }
  }
}

absl::StatusOr<std::vector<AppendResult>> Appender::Append(std::vector<v1::Event> events) {
  auto request = std::make_unique<Request>();
  request->events = std::move(events);
  std::future<absl::StatusOr<std::vector<AppendResult>>> done = request->done.get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return absl::UnavailableError("the audit service is shutting down");
    queue_.push_back(std::move(request));
  }
  queue_cv_.notify_one();
  return done.get();
}

int64_t Appender::committed_sequence() const {
  std::lock_guard<std::mutex> lock(mu_);
  return committed_;
}

uint64_t Appender::wake_generation() const {
  std::lock_guard<std::mutex> lock(mu_);
  return generation_;
}

int64_t Appender::WaitForCommitAfter(int64_t sequence, absl::Duration timeout, uint64_t generation) const {
  std::unique_lock<std::mutex> lock(mu_);
  commit_cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                      [&] { return committed_ > sequence || generation_ != generation; });
  return committed_;
}

void Appender::WakeAll() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++generation_;
  }
  commit_cv_.notify_all();
}

void Appender::Run() {
  for (;;) {
    std::vector<std::unique_ptr<Request>> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) {
        for (auto& r : queue_) r->done.set_value(absl::UnavailableError("the audit service is shutting down"));
        queue_.clear();
        return;
      }
      size_t events = 0;
      while (!queue_.empty() && (batch.empty() || events + queue_.front()->events.size() <= kMaxEventsPerCommit)) {
        events += queue_.front()->events.size();
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    Process(batch);
  }
}

void Appender::Process(std::vector<std::unique_ptr<Request>>& batch) {
  absl::Status failure;
  bool lookup_keys = false;
  for (int attempt = 1; attempt <= kAttempts; ++attempt) {
    if (!head_known_) {
      absl::StatusOr<ChainHead> head = store_.ReadWriterHead();
      if (!head.ok()) {
        failure = head.status();
        break;
      }
      head_ = *head;
      head_known_ = true;
      {
        std::lock_guard<std::mutex> lock(mu_);
        committed_ = std::max(committed_, head_.sequence);
      }
      commit_cv_.notify_all();
    }
    std::vector<Key> keys;
    if (lookup_keys) {
      for (const auto& r : batch) {
        for (const v1::Event& e : r->events) keys.emplace_back(e.service(), e.idempotency_key());
      }
    }
    // Optimistically assume no key is stored yet (the common case: one round
    // trip per commit); a unique violation sends us back here to look them up.
    std::map<Key, v1::Event> known;
    if (lookup_keys) {
      absl::StatusOr<std::vector<v1::Event>> stored = store_.FindByIdempotencyKeys(keys);
      if (!stored.ok()) {
        failure = stored.status();
        break;
      }
      for (v1::Event& e : *stored) {
        Key key(e.service(), e.idempotency_key());
        known.emplace(std::move(key), std::move(e));
      }
    }

    const google::protobuf::Timestamp now = MicrosecondTimestamp(clock_.Now());
    ChainHead tip = head_;
    std::vector<v1::Event> fresh;
    std::vector<absl::StatusOr<std::vector<AppendResult>>> results;
    for (const auto& r : batch) {
      // A request is chained whole or not at all.
      ChainHead request_tip = tip;
      std::map<Key, v1::Event> request_known;
      std::vector<v1::Event> request_fresh;
      std::vector<AppendResult> out;
      absl::Status bad;
      for (size_t i = 0; i < r->events.size() && bad.ok(); ++i) {
        Key key(r->events[i].service(), r->events[i].idempotency_key());
        const v1::Event* stored_event = nullptr;
        if (auto hit = known.find(key); hit != known.end()) {
          stored_event = &hit->second;
        } else if (auto own = request_known.find(key); own != request_known.end()) {
          stored_event = &own->second;
        }
        if (stored_event != nullptr) {
          out.push_back({*stored_event, true});
          continue;
        }
        v1::Event e = r->events[i];
        e.set_sequence(request_tip.sequence + 1);
        *e.mutable_append_time() = now;
        if (!e.has_time()) *e.mutable_time() = now;
        e.set_prev_hash(request_tip.hash);
        absl::StatusOr<std::string> canonical = CanonicalJson(e);
        absl::StatusOr<std::string> hash =
            canonical.ok() ? ChainHash(request_tip.hash, *canonical) : absl::StatusOr<std::string>(canonical.status());
        if (!hash.ok()) {
          bad = absl::InvalidArgumentError(absl::StrCat("events[", i, "]: ", hash.status().message()));
          break;
        }
        e.set_hash(*hash);
        request_tip = {e.sequence(), *hash};
        request_known.emplace(key, e);
        request_fresh.push_back(e);
        out.push_back({std::move(e), false});
      }
      if (!bad.ok()) {
        results.emplace_back(bad);
        continue;
      }
      tip = request_tip;
      for (auto& [k, e] : request_known) known.emplace(k, e);
      for (auto& e : request_fresh) fresh.push_back(std::move(e));
      results.emplace_back(std::move(out));
    }

    absl::Status inserted = store_.InsertChained(head_, fresh);
    if (inserted.ok()) {
      head_ = tip;
      // Answered by the flusher once durable (duplicates too: what they
      // return must be durable as well).
      Committed group;
      group.batch = std::move(batch);
      group.results = std::move(results);
      for (const v1::Event& e : fresh) group.appended.push_back(e.action());
      group.tip = tip.sequence;
      {
        std::lock_guard<std::mutex> lock(mu_);
        committed_groups_.push_back(std::move(group));
      }
      flush_cv_.notify_one();
      return;
    }
    // A key was already stored, or another writer moved the head: look the
    // keys up (and re-read the head), then re-chain.
    lookup_keys = true;
    if (absl::IsAborted(inserted)) head_known_ = false;
    failure = inserted;
    if (!absl::IsAborted(inserted) && !absl::IsAlreadyExists(inserted)) break;
  }
  if (!absl::IsUnavailable(failure)) {
    logging::Error("append failed", {{"error", failure.ToString()}});
  }
  absl::Status reported = absl::IsAborted(failure) || absl::IsAlreadyExists(failure)
                              ? absl::AbortedError(absl::StrCat("append kept conflicting: ", failure.message()))
                              : failure;
  for (auto& r : batch) r->done.set_value(reported);
}

}  // namespace ferry::audit
