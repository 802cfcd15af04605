// The appender's group commit against an in-memory store: callers are
// answered only after the flush that makes their events durable.

#include "services/audit/appender.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "services/audit/event_chain.h"

namespace ferry::audit {
namespace {

// An EventStore keeping the chain in memory, whose FlushWal can be held or
// made to fail.
class FakeEventStore final : public EventStore {
 public:
  absl::StatusOr<ChainHead> ReadWriterHead() override {
    std::lock_guard<std::mutex> lock(mu_);
    return head_;
  }
  absl::StatusOr<std::vector<v1::Event>> FindByIdempotencyKeys(
      const std::vector<std::pair<std::string, std::string>>& keys) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<v1::Event> out;
    for (const auto& k : keys) {
      auto it = by_key_.find(k);
      if (it != by_key_.end()) out.push_back(events_[it->second]);
    }
    return out;
  }
  absl::Status InsertChained(const ChainHead& expected, const std::vector<v1::Event>& events) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (events.empty()) return absl::OkStatus();
    if (expected.sequence != head_.sequence || expected.hash != head_.hash) return absl::AbortedError("moved");
    for (const auto& e : events) {
      if (by_key_.count({e.service(), e.idempotency_key()}) > 0) return absl::AlreadyExistsError("key");
    }
    for (const auto& e : events) {
      by_key_[{e.service(), e.idempotency_key()}] = events_.size();
      events_.push_back(e);
    }
    head_ = {events.back().sequence(), events.back().hash()};
    ++commits_;
    return absl::OkStatus();
  }
  absl::Status FlushWal() override {
    std::unique_lock<std::mutex> lock(mu_);
    flush_cv_.wait(lock, [&] { return !hold_flush_; });
    ++flushes_;
    return flush_status_;
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

  void HoldFlush(bool hold) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      hold_flush_ = hold;
    }
    flush_cv_.notify_all();
  }
  void FailFlush(absl::Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    flush_status_ = std::move(s);
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_.size();
  }
  int commits() {
    std::lock_guard<std::mutex> lock(mu_);
    return commits_;
  }
  std::vector<v1::Event> events() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }

 private:
  std::mutex mu_;
  std::condition_variable flush_cv_;
  ChainHead head_{0, std::string(64, '0')};
  std::vector<v1::Event> events_;
  std::map<std::pair<std::string, std::string>, size_t> by_key_;
  bool hold_flush_ = false;
  absl::Status flush_status_;
  int commits_ = 0;
  int flushes_ = 0;
};

v1::Event MakeEvent(const std::string& key) {
  v1::Event e;
  e.set_service("planner");
  e.mutable_actor()->set_id("ferry");
  e.set_action(v1::AUDIT_ACTION_PLAN_CREATED);
  e.set_idempotency_key(key);
  return e;
}

TEST(AppenderTest, CallersAreAnsweredOnlyAfterTheFlushThatMakesThemDurable) {
  FakeEventStore store;
  SystemClock clock;
  Appender appender(store, clock, nullptr);
  store.HoldFlush(true);
  std::atomic<bool> answered{false};
  std::thread caller([&] {
    auto r = appender.Append({MakeEvent("a")});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ((*r)[0].event.sequence(), 1);
    answered = true;
  });
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (store.size() == 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
  ASSERT_EQ(store.size(), 1u) << "committed";
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_FALSE(answered.load()) << "answered before its flush";
  EXPECT_EQ(appender.committed_sequence(), 0) << "not durable yet";
  store.HoldFlush(false);
  caller.join();
  EXPECT_TRUE(answered.load());
  EXPECT_EQ(appender.committed_sequence(), 1);
}

TEST(AppenderTest, CommitsContinueWhileAFlushIsPendingAndOneFlushAnswersThemAll) {
  FakeEventStore store;
  SystemClock clock;
  Appender appender(store, clock, nullptr);
  store.HoldFlush(true);
  std::vector<std::thread> callers;
  std::atomic<int> ok{0};
  for (int i = 0; i < 20; ++i) {
    callers.emplace_back([&, i] {
      if (appender.Append({MakeEvent(absl::StrCat("k", i))}).ok()) ++ok;
    });
    absl::SleepFor(absl::Milliseconds(2));
  }
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (store.size() < 20 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
  EXPECT_EQ(store.size(), 20u) << "later groups commit while the first flush is held";
  EXPECT_EQ(ok.load(), 0);
  store.HoldFlush(false);
  for (auto& c : callers) c.join();
  EXPECT_EQ(ok.load(), 20);
  std::vector<v1::Event> events = store.events();
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].sequence(), static_cast<int64_t>(i + 1));
    EXPECT_EQ(events[i].prev_hash(), i == 0 ? ZeroHash() : events[i - 1].hash());
    EXPECT_EQ(events[i].hash(), *ChainHash(events[i].prev_hash(), *CanonicalJson(events[i])));
  }
}

TEST(AppenderTest, AFailedFlushAnswersUnavailableAndARetryReturnsTheStoredEvent) {
  FakeEventStore store;
  SystemClock clock;
  Appender appender(store, clock, nullptr);
  store.FailFlush(absl::UnavailableError("connection lost"));
  auto first = appender.Append({MakeEvent("a")});
  EXPECT_EQ(first.status().code(), absl::StatusCode::kUnavailable) << first.status();
  store.FailFlush(absl::OkStatus());
  auto retry = appender.Append({MakeEvent("a")});
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE((*retry)[0].duplicate);
  EXPECT_EQ((*retry)[0].event.sequence(), 1);
  EXPECT_EQ(store.size(), 1u);
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
