// The forwarder's delivery loop against in-memory fakes and a fake clock:
// backoff after failures, wakes, idle polls. (outbox_test.cc covers the
// forwarder with PostgreSQL and NOTIFY.)
#include "common/outbox/outbox_forwarder.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <prometheus/registry.h>

#include "absl/base/thread_annotations.h"
#include "common/concurrency/mutex.h"
#include "tests/support/fake_clock.h"

namespace ferry::outbox {
namespace {

class MemoryOutboxStore final : public OutboxStore {
 public:
  void Add(const std::string& key) {
    MutexLock lock(&mu_);
    PendingEvent p;
    p.id = ++last_id_;
    p.event.set_idempotency_key(key);
    pending_.push_back(p);
  }
  absl::Status Enqueue(pqxx::work&, v1::Event) override { return absl::UnimplementedError("not in memory"); }
  absl::StatusOr<std::vector<PendingEvent>> FetchUnsent(int limit) override {
    MutexLock lock(&mu_);
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
  absl::Status RecordFailure(const std::vector<int64_t>&, const std::string&) override { return absl::OkStatus(); }
  absl::StatusOr<int64_t> Backlog() override {
    MutexLock lock(&mu_);
    return static_cast<int64_t>(pending_.size());
  }

 private:
  Mutex mu_;
  int64_t last_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<PendingEvent> pending_ ABSL_GUARDED_BY(mu_);
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

}  // namespace
}  // namespace ferry::outbox
