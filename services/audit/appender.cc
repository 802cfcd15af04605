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
    : store_(store), clock_(clock), metrics_(metrics) {}

Appender::~Appender() { Stop(); }

void Appender::Stop() {
  std::unique_lock<std::mutex> lock(mu_);
  stopping_ = true;
  ++generation_;
  for (Request* r : queue_) r->result = absl::UnavailableError("the audit service is shutting down");
  queue_.clear();
  turn_cv_.notify_all();
  commit_cv_.notify_all();
  turn_cv_.wait(lock, [&] { return !leading_; });
}

absl::StatusOr<std::vector<AppendResult>> Appender::Append(std::vector<v1::Event> events) {
  Request request;
  request.events = std::move(events);
  std::unique_lock<std::mutex> lock(mu_);
  if (stopping_) return absl::UnavailableError("the audit service is shutting down");
  queue_.push_back(&request);
  while (!request.result.has_value()) {
    if (leading_) {
      turn_cv_.wait(lock);
      continue;
    }
    // Lead: take every queued request (ours among them) and commit them.
    leading_ = true;
    std::vector<Request*> batch;
    size_t queued_events = 0;
    while (!queue_.empty() &&
           (batch.empty() || queued_events + queue_.front()->events.size() <= kMaxEventsPerCommit)) {
      queued_events += queue_.front()->events.size();
      batch.push_back(queue_.front());
      queue_.pop_front();
    }
    lock.unlock();
    int64_t tip = 0;
    std::vector<v1::AuditAction> appended;
    std::vector<absl::StatusOr<std::vector<AppendResult>>> results = Process(batch, &tip, &appended);
    if (metrics_ != nullptr) {
      for (v1::AuditAction a : appended) metrics_->CountAppended(a);
    }
    lock.lock();
    for (size_t i = 0; i < batch.size(); ++i) batch[i]->result = std::move(results[i]);
    committed_ = std::max(committed_, tip);
    leading_ = false;
    turn_cv_.notify_all();
    commit_cv_.notify_all();
  }
  return *std::move(request.result);
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

std::vector<absl::StatusOr<std::vector<AppendResult>>> Appender::Process(const std::vector<Request*>& batch,
                                                                           int64_t* tip_sequence,
                                                                           std::vector<v1::AuditAction>* appended) {
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
      *tip_sequence = std::max(*tip_sequence, head_.sequence);
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
      *tip_sequence = std::max(*tip_sequence, tip.sequence);
      for (const v1::Event& e : fresh) appended->push_back(e.action());
      return results;
    }
    // A key was already stored, or another writer moved the head: look the
    // keys up (and re-read the head), then re-chain. When the outcome is
    // unknown (the connection broke), so is the head.
    lookup_keys = true;
    if (!absl::IsAlreadyExists(inserted)) head_known_ = false;
    failure = inserted;
    if (!absl::IsAborted(inserted) && !absl::IsAlreadyExists(inserted)) break;
  }
  if (!absl::IsUnavailable(failure)) {
    logging::Error("append failed", {{"error", failure.ToString()}});
  }
  absl::Status reported = absl::IsAborted(failure) || absl::IsAlreadyExists(failure)
                              ? absl::AbortedError(absl::StrCat("append kept conflicting: ", failure.message()))
                              : failure;
  return std::vector<absl::StatusOr<std::vector<AppendResult>>>(batch.size(), reported);
}

}  // namespace ferry::audit
