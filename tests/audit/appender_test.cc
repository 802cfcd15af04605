// The appender's group commit against an in-memory store: callers queued
// during a commit share the next one and are answered only after it.

#include "services/audit/appender.h"

#include <gtest/gtest.h>

#include <atomic>
#include <limits>
#include <map>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/concurrency/mutex.h"
#include "services/audit/chain_hasher.h"
#include "services/audit/event_encoder.h"

namespace ferry::audit {
namespace {

// An EventStore keeping the chain in memory, whose commits can be held, or
// made to succeed while their answer is lost.
class FakeEventStore final : public EventStore {
 public:
  absl::StatusOr<ChainHead> ReadWriterHead() override {
    MutexLock lock(&mu_);
    return head_;
  }
  absl::StatusOr<std::vector<v1::Event>> FindByIdempotencyKeys(
      const std::vector<std::pair<std::string, std::string>>& keys) override {
    MutexLock lock(&mu_);
    std::vector<v1::Event> out;
    for (const auto& k : keys) {
      auto it = by_key_.find(k);
      if (it != by_key_.end()) out.push_back(events_[it->second]);
    }
    return out;
  }
  absl::Status InsertChained(const ChainHead& expected, const std::vector<const v1::Event*>& events) override {
    MutexLock lock(&mu_);
    ++held_;
    cv_.SignalAll();
    while (hold_) cv_.Wait(&mu_);
    --held_;
    if (events.empty()) return absl::OkStatus();
    if (expected.sequence != head_.sequence || expected.hash != head_.hash) return absl::AbortedError("moved");
    for (const v1::Event* e : events) {
      if (by_key_.count({e->service(), e->idempotency_key()}) > 0) return absl::AlreadyExistsError("key");
    }
    for (const v1::Event* e : events) {
      by_key_[{e->service(), e->idempotency_key()}] = events_.size();
      events_.push_back(*e);
    }
    head_ = {events.back()->sequence(), events.back()->hash()};
    ++commits_;
    return lost_answer_;
  }
  absl::StatusOr<std::vector<v1::Event>> Query(const EventQuery&) override { return events(); }
  absl::Status StreamChain(int64_t, int64_t, const std::function<bool(const StoredChainRow&)>&) override {
    return absl::OkStatus();
  }
  absl::StatusOr<ChainHead> LastEvent() override { return ReadWriterHead(); }
  absl::StatusOr<ChainHead> StoredHead() override { return ReadWriterHead(); }
  absl::Status InsertCheckpoint(const v1::Checkpoint&) override { return absl::OkStatus(); }
  absl::StatusOr<std::optional<v1::Checkpoint>> LatestCheckpoint(int64_t) override {
    return std::optional<v1::Checkpoint>();
  }
  absl::StatusOr<std::vector<v1::Checkpoint>> CheckpointsInRange(int64_t, int64_t) override {
    return std::vector<v1::Checkpoint>();
  }

  void HoldCommits(bool hold) {
    MutexLock lock(&mu_);
    hold_ = hold;
    cv_.SignalAll();
  }
  // True once `n` commits are waiting in HoldCommits.
  bool WaitForHeldCommits(int n) {
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    MutexLock lock(&mu_);
    while (held_ < n && !cv_.WaitWithDeadline(&mu_, deadline)) {
    }
    return held_ >= n;
  }
  int held_commits() {
    MutexLock lock(&mu_);
    return held_;
  }
  void LoseAnswers(absl::Status s) {
    MutexLock lock(&mu_);
    lost_answer_ = std::move(s);
  }
  size_t size() {
    MutexLock lock(&mu_);
    return events_.size();
  }
  int commits() {
    MutexLock lock(&mu_);
    return commits_;
  }
  std::vector<v1::Event> events() {
    MutexLock lock(&mu_);
    return events_;
  }

 private:
  Mutex mu_;
  CondVar cv_;  // hold_ or held_ changed
  ChainHead head_ ABSL_GUARDED_BY(mu_) = {0, std::string(64, '0')};
  std::vector<v1::Event> events_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, std::string>, size_t> by_key_ ABSL_GUARDED_BY(mu_);
  bool hold_ ABSL_GUARDED_BY(mu_) = false;
  int held_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status lost_answer_ ABSL_GUARDED_BY(mu_);
  int commits_ ABSL_GUARDED_BY(mu_) = 0;
};

// Collects AppendAsync answers.
class Answers {
 public:
  Appender::Done Slot(int i) {
    return [this, i](Appender::Result r) {
      MutexLock lock(&mu_);
      results_[i] = std::move(r);
      order_.push_back(i);
      cv_.SignalAll();
    };
  }
  bool WaitFor(size_t n) {
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    MutexLock lock(&mu_);
    while (order_.size() < n && !cv_.WaitWithDeadline(&mu_, deadline)) {
    }
    return order_.size() >= n;
  }
  size_t count() {
    MutexLock lock(&mu_);
    return order_.size();
  }
  std::vector<int> order() {
    MutexLock lock(&mu_);
    return order_;
  }
  Appender::Result result(int i) {
    MutexLock lock(&mu_);
    return results_.at(i);
  }

 private:
  Mutex mu_;
  CondVar cv_;  // an answer came
  std::map<int, Appender::Result> results_ ABSL_GUARDED_BY(mu_);
  std::vector<int> order_ ABSL_GUARDED_BY(mu_);
};

v1::Event MakeEvent(const std::string& key) {
  v1::Event e;
  e.set_service("planner");
  e.mutable_actor()->set_id("ferry");
  e.set_action(v1::AUDIT_ACTION_PLAN_CREATED);
  e.set_idempotency_key(key);
  return e;
}

TEST(AppenderTest, CallersQueuedDuringACommitShareTheNextOneAndAreAnsweredAfterIt) {
  FakeEventStore store;
  SystemClock clock;
  Appender appender(store, clock, nullptr);
  store.HoldCommits(true);
  std::atomic<int> ok{0};
  std::thread first([&] {
    if (appender.Append({MakeEvent("first")}).ok()) ++ok;
  });
  ASSERT_TRUE(store.WaitForHeldCommits(1)) << "the first caller leads a commit";
  std::vector<std::thread> callers;
  for (int i = 0; i < 20; ++i) {
    callers.emplace_back([&, i] {
      if (appender.Append({MakeEvent(absl::StrCat("k", i)), MakeEvent(absl::StrCat("k", i, "b"))}).ok()) ++ok;
    });
  }
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(ok.load(), 0) << "nobody is answered before their commit";
  EXPECT_EQ(appender.committed_sequence(), 0);
  EXPECT_EQ(store.held_commits(), 1) << "later callers wait for the running commit";
  store.HoldCommits(false);
  first.join();
  for (auto& c : callers) c.join();
  EXPECT_EQ(ok.load(), 21);
  EXPECT_EQ(store.commits(), 2) << "the 20 callers queued meanwhile share one commit";
  EXPECT_EQ(appender.committed_sequence(), 41);
  std::vector<v1::Event> events = store.events();
  ASSERT_EQ(events.size(), 41u);
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].sequence(), static_cast<int64_t>(i + 1));
    EXPECT_EQ(events[i].prev_hash(), i == 0 ? ZeroHash() : events[i - 1].hash());
    EXPECT_EQ(events[i].hash(), *ChainHash(events[i].prev_hash(), *CanonicalJson(events[i])));
    // A request's events are consecutive.
    if (absl::EndsWith(events[i].idempotency_key(), "b")) {
      EXPECT_EQ(events[i - 1].idempotency_key() + "b", events[i].idempotency_key());
    }
  }
}

TEST(AppenderTest, AnUnknownOutcomeAnswersUnavailableAndARetryReturnsTheStoredEvent) {
  FakeEventStore store;
  SystemClock clock;
  Appender appender(store, clock, nullptr);
  store.LoseAnswers(absl::UnavailableError("connection lost during COMMIT"));
  auto first = appender.Append({MakeEvent("a")});
  EXPECT_EQ(first.status().code(), absl::StatusCode::kUnavailable) << first.status();
  EXPECT_EQ(store.size(), 1u) << "the commit happened; only its answer was lost";
  store.LoseAnswers(absl::OkStatus());
  auto retry = appender.Append({MakeEvent("a")});
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE((*retry)[0].duplicate);
  EXPECT_EQ((*retry)[0].event.sequence(), 1);
  auto next = appender.Append({MakeEvent("b")});
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ((*next)[0].event.sequence(), 2) << "the head was re-read after the unknown outcome";
  EXPECT_EQ(store.size(), 2u);
}

TEST(AppenderTest, AppendAsyncReturnsAtOnceAndIsAnsweredAfterItsCommitInOrder) {
  FakeEventStore store;
  SystemClock clock;
  Appender appender(store, clock, nullptr);
  Answers answers;
  store.HoldCommits(true);
  appender.AppendAsync({MakeEvent("a")}, answers.Slot(0));  // returns at once
  ASSERT_TRUE(store.WaitForHeldCommits(1)) << "a is being committed";
  appender.AppendAsync({MakeEvent("b")}, answers.Slot(1));
  appender.AppendAsync({MakeEvent("c")}, answers.Slot(2));
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(answers.count(), 0u) << "nothing is answered before its commit";
  EXPECT_EQ(appender.committed_sequence(), 0);
  store.HoldCommits(false);
  ASSERT_TRUE(answers.WaitFor(3));
  EXPECT_EQ(answers.order(), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(store.commits(), 2) << "b and c, queued during a's commit, share the next one";
  ASSERT_TRUE(answers.result(2).ok()) << answers.result(2).status();
  EXPECT_EQ((*answers.result(2))[0].event.sequence(), 3);
  EXPECT_EQ((*answers.result(2))[0].event.prev_hash(), (*answers.result(1))[0].event.hash());
  EXPECT_EQ(appender.committed_sequence(), 3);
}

TEST(AppenderTest, StopWaitsForTheRunningCommitAnswersItAndRefusesTheRest) {
  FakeEventStore store;
  SystemClock clock;
  Appender appender(store, clock, nullptr);
  Answers answers;
  store.HoldCommits(true);
  appender.AppendAsync({MakeEvent("a")}, answers.Slot(0));
  ASSERT_TRUE(store.WaitForHeldCommits(1));
  appender.AppendAsync({MakeEvent("queued")}, answers.Slot(1));
  std::thread stopper([&] { appender.Stop(); });
  ASSERT_TRUE(answers.WaitFor(1));
  EXPECT_EQ(answers.order(), (std::vector<int>{1})) << "the queued request is refused at once";
  EXPECT_EQ(answers.result(1).status().code(), absl::StatusCode::kUnavailable);
  store.HoldCommits(false);
  stopper.join();
  ASSERT_EQ(answers.count(), 2u) << "Stop returned only after the running commit was answered";
  EXPECT_TRUE(answers.result(0).ok()) << answers.result(0).status();
  appender.AppendAsync({MakeEvent("late")}, answers.Slot(2));
  ASSERT_EQ(answers.count(), 3u) << "answered at once after Stop";
  EXPECT_EQ(answers.result(2).status().code(), absl::StatusCode::kUnavailable);
}

TEST(AppenderTest, ABadEventFailsOnlyItsOwnRequest) {
  FakeEventStore store;
  SystemClock clock;
  Appender appender(store, clock, nullptr);
  store.HoldCommits(true);
  std::thread first([&] { ASSERT_TRUE(appender.Append({MakeEvent("first")}).ok()); });
  ASSERT_TRUE(store.WaitForHeldCommits(1));
  v1::Event bad = MakeEvent("bad");
  (*bad.mutable_details()->mutable_fields())["x"].set_number_value(std::numeric_limits<double>::infinity());
  absl::StatusOr<std::vector<AppendResult>> bad_result, good_result;
  std::thread bad_caller([&] { bad_result = appender.Append({MakeEvent("ok-in-bad"), bad}); });
  std::thread good_caller([&] { good_result = appender.Append({MakeEvent("good")}); });
  absl::SleepFor(absl::Milliseconds(50));
  store.HoldCommits(false);
  first.join();
  bad_caller.join();
  good_caller.join();
  EXPECT_EQ(bad_result.status().code(), absl::StatusCode::kInvalidArgument) << bad_result.status();
  ASSERT_TRUE(good_result.ok()) << good_result.status();
  EXPECT_EQ((*good_result)[0].event.sequence(), 2);
  EXPECT_EQ(store.size(), 2u) << "nothing of the bad request was stored";
}

TEST(AppenderTest, StopAnswersQueuedCallersUnavailable) {
  FakeEventStore store;
  SystemClock clock;
  auto appender = std::make_unique<Appender>(store, clock, nullptr);
  appender->Stop();
  EXPECT_EQ(appender->Append({MakeEvent("late")}).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace ferry::audit
