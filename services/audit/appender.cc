#include "services/audit/appender.h"

#include <map>
#include <memory>
#include <utility>

#include <google/protobuf/util/time_util.h>

#include "absl/strings/str_cat.h"
#include "common/concurrency/await_callback.h"
#include "common/logging/logger.h"
#include "services/audit/chain_hasher.h"
#include "services/audit/event_encoder.h"

namespace ferry::audit {
namespace {

constexpr size_t kMaxEventsPerCommit = 5000;
constexpr int kAttempts = 5;

google::protobuf::Timestamp MicrosecondTimestamp(absl::Time t) {
  return google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

}  // namespace

Appender::Appender(EventStore& store, const Clock& clock, AuditMetrics* metrics)
    : store_(store),
      clock_(clock),
      metrics_(metrics),
      committer_([this] { RunCommitter(); }),
      responder_([this] { RunResponder(); }) {}

Appender::~Appender() { Stop(); }

void Appender::Stop() {
  std::deque<Request> refused;
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    refused.swap(queue_);
    queued_cv_.SignalAll();
  }
  commit_signal_.Notify();
  for (Request& r : refused) r.done(absl::UnavailableError("the audit service is shutting down"));
  MutexLock join_lock(&join_mu_);
  if (committer_.joinable()) committer_.join();
  {
    MutexLock lock(&mu_);
    committer_done_ = true;
    answer_cv_.SignalAll();
  }
  if (responder_.joinable()) responder_.join();
}

void Appender::AppendAsync(std::vector<v1::Event> events, Done done) {
  {
    MutexLock lock(&mu_);
    if (!stopping_) {
      std::vector<bool> timeless;
      timeless.reserve(events.size());
      for (const v1::Event& e : events) timeless.push_back(!e.has_time());
      queue_.push_back({std::move(events), std::move(done), std::move(timeless)});
      if (queue_.size() == 1) queued_cv_.Signal();
      return;
    }
  }
  done(absl::UnavailableError("the audit service is shutting down"));
}

Appender::Result Appender::Append(std::vector<v1::Event> events) {
  return concurrency::AwaitCallback<Result>([&](Done done) { AppendAsync(std::move(events), std::move(done)); });
}

std::vector<Appender::Request> Appender::TakeQueued() {
  // Every queued request, up to kMaxEventsPerCommit events.
  std::vector<Request> batch;
  size_t queued_events = 0;
  while (!queue_.empty() && (batch.empty() || queued_events + queue_.front().events.size() <= kMaxEventsPerCommit)) {
    queued_events += queue_.front().events.size();
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return batch;
}

void Appender::Committed(std::vector<Request> batch, std::vector<Result> results, int64_t tip,
                         const std::vector<v1::AuditAction>& appended) {
  if (metrics_ != nullptr) {
    for (v1::AuditAction a : appended) metrics_->CountAppended(a);
  }
  MutexLock lock(&mu_);
  if (tip > committed_) {
    committed_ = tip;
    commit_signal_.Notify();
  }
  // Answering (a gRPC Finish each) takes a fifth of a commit's time: the
  // responder does it while this thread commits the next group.
  answers_.push_back({std::move(batch), std::move(results)});
  answer_cv_.Signal();
}

void Appender::CommitSerially(std::vector<Request> batch) {
  int64_t tip = 0;
  std::vector<v1::AuditAction> appended;
  std::vector<Result> results = Process(batch, &tip, &appended);
  Committed(std::move(batch), std::move(results), tip, appended);
}

void Appender::RunCommitter() {
  // `current` is sent to the store and not yet committed; while it commits,
  // the requests queued meanwhile are chained after it and sent behind it
  // (`next`), so that the database starts on them as soon as `current` is
  // durable. Any failure falls back to Process, one group at a time.
  struct Group {
    std::vector<Request> batch;
    Chained chained;
  };
  auto send = [&](std::vector<Request> batch, const ChainHead& from) {
    auto g = std::make_unique<Group>();
    g->batch = std::move(batch);
    g->chained = Chain(g->batch, from, {});
    store_.SendInsert(g->chained.from, g->chained.fresh);
    return g;
  };
  std::unique_ptr<Group> current;
  while (true) {
    if (!current) {
      std::vector<Request> batch;
      {
        MutexLock lock(&mu_);
        while (!stopping_ && queue_.empty()) queued_cv_.Wait(&mu_);
        if (stopping_) return;
        batch = TakeQueued();
      }
      if (!head_known_) {
        CommitSerially(std::move(batch));
        continue;
      }
      current = send(std::move(batch), head_);
    }
    std::unique_ptr<Group> next;
    if (store_.AwaitInserted().ok()) {
      std::vector<Request> batch;
      {
        MutexLock lock(&mu_);
        if (!stopping_ && !queue_.empty()) batch = TakeQueued();
      }
      if (!batch.empty()) next = send(std::move(batch), current->chained.tip);
    }
    absl::Status committed = store_.AwaitCommitted();
    // `next` can commit only after `current` did (it moves the head from
    // current's tip), so a failure of `current` is redone with `next`.
    const bool next_committed = !committed.ok() && next != nullptr && store_.AwaitCommitted().ok();
    if (committed.ok() || next_committed) {
      head_ = current->chained.tip;
      std::vector<v1::AuditAction> actions = Actions(current->chained);  // before the events move
      std::vector<Result> results = Answers(current->batch, current->chained);
      Committed(std::move(current->batch), std::move(results), head_.sequence, actions);
      current.reset();
      if (next_committed) {
        head_ = next->chained.tip;
        std::vector<v1::AuditAction> next_actions = Actions(next->chained);
        std::vector<Result> next_results = Answers(next->batch, next->chained);
        Committed(std::move(next->batch), std::move(next_results), head_.sequence, next_actions);
      } else {
        current = std::move(next);
      }
      continue;
    }
    // Redo both, serially: Process re-reads the head (or looks the keys up)
    // and re-chains.
    if (!absl::IsAlreadyExists(committed)) head_known_ = false;
    std::vector<Request> batch = std::move(current->batch);
    current.reset();
    if (next != nullptr) {
      for (Request& r : next->batch) batch.push_back(std::move(r));
    }
    CommitSerially(std::move(batch));
  }
}

void Appender::RunResponder() {
  while (true) {
    std::deque<Answered> ready;
    {
      MutexLock lock(&mu_);
      while (!committer_done_ && answers_.empty()) answer_cv_.Wait(&mu_);
      if (answers_.empty()) return;  // the committer is done and everything is answered
      ready.swap(answers_);
    }
    for (Answered& a : ready) {
      for (size_t i = 0; i < a.batch.size(); ++i) a.batch[i].done(std::move(a.results[i]));
    }
  }
}

int64_t Appender::committed_sequence() const {
  MutexLock lock(&mu_);
  return committed_;
}

uint64_t Appender::wake_generation() const { return commit_signal_.Version(); }

int64_t Appender::WaitForCommitAfter(int64_t sequence, absl::Duration timeout, uint64_t generation) const {
  // Every move of committed_ notifies the signal after it is made, so a
  // commit after `generation` was read ends the wait.
  if (committed_sequence() <= sequence) commit_signal_.WaitForChange(generation, timeout);
  return committed_sequence();
}

void Appender::WakeAll() { commit_signal_.Notify(); }

Appender::Chained Appender::Chain(std::vector<Request>& batch, const ChainHead& from,
                                  const std::map<Key, v1::Event>& stored) const {
  // Chain the events in place. Each event is answered with itself, or with
  // the stored or earlier event of the same key (a duplicate). Events without
  // a time get the append time (`timeless`: an earlier attempt may have set
  // it in place).
  const google::protobuf::Timestamp now = MicrosecondTimestamp(clock_.Now());
  Chained out;
  out.from = from;
  out.tip = from;
  out.request_status.resize(batch.size());
  out.answers.resize(batch.size());
  std::map<Key, const v1::Event*> chained;  // by the requests taken so far
  for (size_t ri = 0; ri < batch.size(); ++ri) {
    // A request is chained whole or not at all.
    std::vector<v1::Event>& events = batch[ri].events;
    ChainHead request_tip = out.tip;
    std::map<Key, const v1::Event*> request_chained;
    std::vector<const v1::Event*> request_fresh;
    std::vector<const v1::Event*>& answer = out.answers[ri];
    for (size_t i = 0; i < events.size(); ++i) {
      Key key(events[i].service(), events[i].idempotency_key());
      const v1::Event* earlier = nullptr;
      if (auto hit = stored.find(key); hit != stored.end()) {
        earlier = &hit->second;
      } else if (auto mine = chained.find(key); mine != chained.end()) {
        earlier = mine->second;
      } else if (auto own = request_chained.find(key); own != request_chained.end()) {
        earlier = own->second;
      }
      if (earlier != nullptr) {
        answer.push_back(earlier);
        continue;
      }
      v1::Event& e = events[i];
      e.set_sequence(request_tip.sequence + 1);
      *e.mutable_append_time() = now;
      if (batch[ri].timeless[i]) *e.mutable_time() = now;
      e.set_prev_hash(request_tip.hash);
      absl::StatusOr<std::string> canonical = CanonicalJson(e);
      absl::StatusOr<std::string> hash =
          canonical.ok() ? ChainHash(request_tip.hash, *canonical) : absl::StatusOr<std::string>(canonical.status());
      if (!hash.ok()) {
        out.request_status[ri] = absl::InvalidArgumentError(absl::StrCat("events[", i, "]: ", hash.status().message()));
        break;
      }
      e.set_hash(*std::move(hash));
      request_tip = {e.sequence(), e.hash()};
      request_chained.emplace(std::move(key), &e);
      request_fresh.push_back(&e);
      answer.push_back(&e);
    }
    if (!out.request_status[ri].ok()) continue;
    out.tip = std::move(request_tip);
    chained.merge(request_chained);
    out.fresh.insert(out.fresh.end(), request_fresh.begin(), request_fresh.end());
  }
  return out;
}

std::vector<Appender::Result> Appender::Answers(std::vector<Request>& batch, const Chained& chained) {
  // Copy the duplicates' answers first: they may point at events that are
  // then moved into their own answers.
  std::vector<std::vector<AppendResult>> outs(batch.size());
  for (size_t ri = 0; ri < batch.size(); ++ri) {
    if (!chained.request_status[ri].ok()) continue;
    outs[ri].resize(chained.answers[ri].size());
    for (size_t i = 0; i < chained.answers[ri].size(); ++i) {
      if (chained.answers[ri][i] == &batch[ri].events[i]) continue;
      outs[ri][i] = {*chained.answers[ri][i], true};
    }
  }
  std::vector<Result> results;
  results.reserve(batch.size());
  for (size_t ri = 0; ri < batch.size(); ++ri) {
    if (!chained.request_status[ri].ok()) {
      results.emplace_back(chained.request_status[ri]);
      continue;
    }
    for (size_t i = 0; i < chained.answers[ri].size(); ++i) {
      if (chained.answers[ri][i] == &batch[ri].events[i]) outs[ri][i].event = std::move(batch[ri].events[i]);
    }
    results.emplace_back(std::move(outs[ri]));
  }
  return results;
}

std::vector<v1::AuditAction> Appender::Actions(const Chained& chained) {
  std::vector<v1::AuditAction> actions;
  actions.reserve(chained.fresh.size());
  for (const v1::Event* e : chained.fresh) actions.push_back(e->action());
  return actions;
}

std::vector<Appender::Result> Appender::Process(std::vector<Request>& batch, int64_t* tip_sequence,
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
    // Optimistically assume no key is stored yet (the common case: one round
    // trip per commit); a unique violation sends us back here to look them up.
    std::map<Key, v1::Event> stored;
    if (lookup_keys) {
      std::vector<Key> keys;
      for (const Request& r : batch) {
        for (const v1::Event& e : r.events) keys.emplace_back(e.service(), e.idempotency_key());
      }
      absl::StatusOr<std::vector<v1::Event>> found = store_.FindByIdempotencyKeys(keys);
      if (!found.ok()) {
        failure = found.status();
        break;
      }
      for (v1::Event& e : *found) {
        Key key(e.service(), e.idempotency_key());
        stored.emplace(std::move(key), std::move(e));
      }
    }
    Chained chained = Chain(batch, head_, stored);
    absl::Status inserted = store_.InsertChained(chained.from, chained.fresh);
    if (inserted.ok()) {
      head_ = chained.tip;
      *tip_sequence = std::max(*tip_sequence, chained.tip.sequence);
      *appended = Actions(chained);
      return Answers(batch, chained);
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
  return std::vector<Result>(batch.size(), reported);
}

}  // namespace ferry::audit
