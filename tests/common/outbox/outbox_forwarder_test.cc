// The forwarder's delivery loop against in-memory fakes and a fake clock:
// backoff after failures, wakes, idle polls. (outbox_test.cc covers the
// forwarder with PostgreSQL and NOTIFY.)
#include "common/outbox/outbox_forwarder.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "common/concurrency/mutex.h"
#include "tests/support/fake_clock.h"

namespace ferry::outbox {
namespace {

class MemoryOutboxStore final : public OutboxStore {
 public:
  // An event with `key` and a message of `message_bytes` bytes.
  void Add(const std::string& key, size_t message_bytes = 0) {
    MutexLock lock(&mu_);
    PendingEvent p;
    p.id = ++last_id_;
    p.event.set_idempotency_key(key);
    p.event.set_message(std::string(message_bytes, 'm'));
    pending_.push_back(p);
  }
  // Ids with a recorded failure, in order.
  std::vector<int64_t> failed() {
    MutexLock lock(&mu_);
    return failed_;
  }
  absl::Status Enqueue(pqxx::work&, v1::Event) override { return absl::UnimplementedError("not in memory"); }
  absl::StatusOr<std::vector<PendingEvent>> FetchUnsent(int limit) override {
    MutexLock lock(&mu_);
    ++fetches_;
    std::vector<PendingEvent> out;
    for (const PendingEvent& p : pending_) {
      if (static_cast<int>(out.size()) == limit) break;
      out.push_back(p);
    }
    return out;
  }
  absl::Status MarkSent(const std::vector<int64_t>& ids) override {
    MutexLock lock(&mu_);
    for (int64_t id : ids) std::erase_if(pending_, [id](const PendingEvent& p) { return p.id == id; });
    return absl::OkStatus();
  }
  absl::Status RecordFailure(const std::vector<int64_t>& ids, const std::string&) override {
    MutexLock lock(&mu_);
    failed_.insert(failed_.end(), ids.begin(), ids.end());
    return absl::OkStatus();
  }
  absl::StatusOr<int64_t> Backlog() override {
    MutexLock lock(&mu_);
    ++backlog_reads_;
    return static_cast<int64_t>(pending_.size());
  }
  int fetches() {
    MutexLock lock(&mu_);
    return fetches_;
  }
  int backlog_reads() {
    MutexLock lock(&mu_);
    return backlog_reads_;
  }

 private:
  int fetches_ ABSL_GUARDED_BY(mu_) = 0;
  int backlog_reads_ ABSL_GUARDED_BY(mu_) = 0;
  Mutex mu_;
  int64_t last_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<PendingEvent> pending_ ABSL_GUARDED_BY(mu_);
  std::vector<int64_t> failed_ ABSL_GUARDED_BY(mu_);
};

// Refuses, like the audit service behind its gRPC receive limit, any batch
// whose events serialize to more than `max_bytes` with RESOURCE_EXHAUSTED;
// takes the others.
class SizeLimitedSink final : public AuditSink {
 public:
  explicit SizeLimitedSink(size_t max_bytes) : max_bytes_(max_bytes) {}
  absl::Status AppendBatch(const std::vector<v1::Event>& events) override {
    MutexLock lock(&mu_);
    size_t bytes = 0;
    for (const v1::Event& e : events) bytes += e.ByteSizeLong();
    batches_.push_back(events.size());
    if (bytes > max_bytes_) {
      return absl::ResourceExhaustedError(absl::StrCat("Received message larger than max (", bytes, " vs. ",
                                                       max_bytes_, ")"));
    }
    for (const v1::Event& e : events) keys_.push_back(e.idempotency_key());
    return absl::OkStatus();
  }
  std::vector<std::string> keys() {
    MutexLock lock(&mu_);
    return keys_;
  }
  std::vector<size_t> batches() {
    MutexLock lock(&mu_);
    return batches_;
  }

 private:
  const size_t max_bytes_;
  Mutex mu_;
  std::vector<std::string> keys_ ABSL_GUARDED_BY(mu_);
  std::vector<size_t> batches_ ABSL_GUARDED_BY(mu_);  // sizes of every batch tried
};

// Fails the first `failures` batches with UNAVAILABLE, then takes them.
class FlakySink final : public AuditSink {
 public:
  explicit FlakySink(int failures) : failures_(failures) {}
  absl::Status AppendBatch(const std::vector<v1::Event>& events) override {
    MutexLock lock(&mu_);
    ++attempts_;
    if (failures_ > 0) {
      --failures_;
      return absl::UnavailableError("audit service down");
    }
    for (const v1::Event& e : events) keys_.push_back(e.idempotency_key());
    return absl::OkStatus();
  }
  int attempts() {
    MutexLock lock(&mu_);
    return attempts_;
  }
  std::vector<std::string> keys() {
    MutexLock lock(&mu_);
    return keys_;
  }

 private:
  Mutex mu_;
  int failures_ ABSL_GUARDED_BY(mu_);
  int attempts_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> keys_ ABSL_GUARDED_BY(mu_);
};

TEST(OutboxForwarderTest, FailedDeliveriesBackOffIgnoringWakesThenTheIdlePollResumes) {
  testing::FakeClock clock;
  MemoryOutboxStore store;
  store.Add("e1");
  FlakySink sink(2);
  prometheus::Registry registry;
  OutboxForwarder forwarder("test", "unused", &store, &sink, nullptr, &registry,
                            {.initial_backoff = absl::Seconds(1), .max_backoff = absl::Seconds(10),
                             .idle_poll = absl::Hours(1), .clock = &clock});
  forwarder.Start();
  clock.AwaitSleeps(1);
  EXPECT_EQ(sink.attempts(), 1);
  EXPECT_EQ(clock.SleepingUntil() - clock.Now(), absl::Seconds(1));
  forwarder.Wake();  // during a backoff: dropped
  clock.AwaitSleeps(2);
  EXPECT_EQ(sink.attempts(), 1);
  clock.AdvanceToNextDeadline();
  clock.AwaitSleeps(3);
  EXPECT_EQ(sink.attempts(), 2);
  EXPECT_EQ(clock.SleepingUntil() - clock.Now(), absl::Seconds(2));
  clock.AdvanceToNextDeadline();
  clock.AwaitSleeps(4);
  EXPECT_EQ(sink.keys(), std::vector<std::string>{"e1"});
  EXPECT_EQ(clock.SleepingUntil() - clock.Now(), absl::Hours(1)) << "delivered: back to the idle poll";
  forwarder.Stop();
}

TEST(OutboxForwarderTest, AWakeDeliversWithoutWaitingForTheIdlePoll) {
  testing::FakeClock clock;
  MemoryOutboxStore store;
  FlakySink sink(0);
  prometheus::Registry registry;
  OutboxForwarder forwarder("test", "unused", &store, &sink, nullptr, &registry,
                            {.idle_poll = absl::Hours(1), .clock = &clock});
  forwarder.Start();
  clock.AwaitSleeps(1);
  const absl::Time before = clock.Now();
  store.Add("e1");
  forwarder.Wake();
  clock.AwaitSleeps(2);
  EXPECT_EQ(sink.keys(), std::vector<std::string>{"e1"});
  EXPECT_EQ(clock.Now(), before);
  forwarder.Stop();
  forwarder.Stop();  // idempotent
}

std::vector<std::string> Keys(int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i <= to; ++i) out.push_back(absl::StrCat("e", i));
  return out;
}

// Issue #23: a round per commit was a read, a batch and a mark per commit,
// and two more reads (the empty one that ended the round, the backlog).
// While events keep coming, a round starts min_round_interval after the
// last delivering one, and takes everything that came meanwhile; a read of
// less than a batch ends a round, and the gauge needs no count after it.
TEST(OutboxForwarderTest, EventsThatKeepComingGoTogetherARoundAnIntervalEachReadOnce) {
  testing::FakeClock clock;
  MemoryOutboxStore store;
  FlakySink sink(0);
  prometheus::Registry registry;
  OutboxForwarder forwarder("test", "unused", &store, &sink, nullptr, &registry,
                            {.idle_poll = absl::Hours(1), .min_round_interval = absl::Milliseconds(100),
                             .clock = &clock});
  forwarder.Start();
  clock.AwaitSleeps(1);  // a first round found nothing
  const absl::Time t0 = clock.Now();
  store.Add("e1");
  forwarder.Wake();
  clock.AwaitSleeps(2);
  EXPECT_EQ(sink.keys(), std::vector<std::string>{"e1"}) << "the first after a quiet spell goes at once";
  EXPECT_EQ(clock.Now(), t0);
  EXPECT_EQ(store.fetches(), 2);
  store.Add("e2");
  store.Add("e3");
  forwarder.Wake();
  clock.AwaitSleeps(3);
  EXPECT_EQ(sink.keys(), std::vector<std::string>{"e1"}) << "waits out the interval";
  EXPECT_EQ(clock.SleepingUntil(), t0 + absl::Milliseconds(100));
  store.Add("e4");
  clock.Advance(absl::Milliseconds(100));
  clock.AwaitSleeps(4);
  EXPECT_EQ(sink.keys(), Keys(1, 4));
  EXPECT_EQ(sink.attempts(), 2) << "e2 to e4 in one batch";
  EXPECT_EQ(store.fetches(), 3) << "one read a round";
  EXPECT_EQ(store.backlog_reads(), 0);
  EXPECT_EQ(clock.SleepingUntil(), clock.Now() + absl::Hours(1));
  // Quiet for a while: the next goes at once again.
  clock.Advance(absl::Seconds(1));
  const absl::Time t1 = clock.Now();
  store.Add("e5");
  forwarder.Wake();
  clock.AwaitSleeps(5);
  EXPECT_EQ(sink.keys(), Keys(1, 5));
  EXPECT_EQ(clock.Now(), t1);
  forwarder.Stop();
}

// A batch the audit service refused as too large was retried unchanged, for
// ever, and every event behind it waited. It is now halved until the halves
// fit, in order.
TEST(OutboxForwarderTest, ABatchRefusedAsTooLargeIsHalvedAndDeliveredInOrder) {
  MemoryOutboxStore store;
  for (int i = 1; i <= 16; ++i) store.Add(absl::StrCat("e", i), 1000);
  SizeLimitedSink sink(4500);  // four events fit, five do not
  prometheus::Registry registry;
  OutboxForwarder forwarder("test", "unused", &store, &sink, nullptr, &registry, {.max_batch_bytes = 1 << 20});
  ASSERT_TRUE(forwarder.DrainOnce().ok());
  EXPECT_EQ(sink.keys(), Keys(1, 16));
  EXPECT_EQ(store.Backlog().value(), 0);
  EXPECT_TRUE(store.failed().empty());
  // 16 refused, 8 refused, 4 and 4 taken, 8 refused, 4 and 4 taken.
  EXPECT_EQ(sink.batches(), (std::vector<size_t>{16, 8, 4, 4, 8, 4, 4}));
}

TEST(OutboxForwarderTest, BatchesAreCappedByBytesAsWellAsCount) {
  MemoryOutboxStore store;
  for (int i = 1; i <= 10; ++i) store.Add(absl::StrCat("e", i), 1000);
  SizeLimitedSink sink(1 << 20);
  prometheus::Registry registry;
  OutboxForwarder forwarder("test", "unused", &store, &sink, nullptr, &registry,
                            {.batch_size = 500, .max_batch_bytes = 3500});
  ASSERT_TRUE(forwarder.DrainOnce().ok());
  EXPECT_EQ(sink.keys(), Keys(1, 10));
  EXPECT_EQ(sink.batches(), (std::vector<size_t>{3, 3, 3, 1}));
}

// One event larger than the audit service takes is dead-lettered: recorded
// with its error, skipped, never blocking the events behind it.
TEST(OutboxForwarderTest, AnEventTooLargeForTheAuditServiceIsDeadLetteredAndTheRestFlows) {
  MemoryOutboxStore store;
  store.Add("e1", 100);
  store.Add("huge", 10000);
  store.Add("e3", 100);
  SizeLimitedSink sink(5000);
  prometheus::Registry registry;
  OutboxForwarder forwarder("test", "unused", &store, &sink, nullptr, &registry);
  ASSERT_TRUE(forwarder.DrainOnce().ok());
  EXPECT_EQ(sink.keys(), (std::vector<std::string>{"e1", "e3"}));
  EXPECT_EQ(store.failed(), std::vector<int64_t>{2});
  EXPECT_EQ(store.Backlog().value(), 0) << "the refused event blocks nothing";
  std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_NE(text.find(R"(ferry_outbox_delivered_total{result="dead_letter",service="test"} 1)"), std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(ferry_outbox_delivered_total{result="ok",service="test"} 2)"), std::string::npos) << text;
}

}  // namespace
}  // namespace ferry::outbox
