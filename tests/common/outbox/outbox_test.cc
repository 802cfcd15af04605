#include <gtest/gtest.h>
#include <cstdlib>
#include <google/protobuf/util/time_util.h>
#include <pqxx/pqxx>

#include "absl/base/thread_annotations.h"
#include "absl/time/clock.h"
#include "absl/strings/str_cat.h"
#include "common/concurrency/mutex.h"
#include "common/outbox/audit_limits.h"
#include "common/outbox/outbox_forwarder.h"
#include "common/outbox/postgres_outbox_store.h"
#include "common/postgres/migrator.h"
#include "svc_migrations.h"
#include "tests/support/test_database.h"

namespace ferry::outbox {
namespace {

// An audit service that can be "down", records what it received, and
// deduplicates on idempotency key like the real one.
class FakeAuditSink final : public AuditSink {
 public:
  absl::Status AppendBatch(const std::vector<v1::Event>& events) override {
    MutexLock lock(&mu_);
    ++calls_;
    if (down_) return absl::UnavailableError("audit down");
    for (const auto& e : events) {
      if (e.idempotency_key() == refuse_key_) return absl::InvalidArgumentError("refused");
    }
    for (const auto& e : events) {
      if (std::find(keys_.begin(), keys_.end(), e.idempotency_key()) == keys_.end()) {
        keys_.push_back(e.idempotency_key());
      }
    }
    return absl::OkStatus();
  }
  void SetDown(bool down) {
    MutexLock lock(&mu_);
    down_ = down;
  }
  std::vector<std::string> keys() {
    MutexLock lock(&mu_);
    return keys_;
  }
  std::string refuse_key_;

 private:
  Mutex mu_;
  bool down_ ABSL_GUARDED_BY(mu_) = false;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> keys_ ABSL_GUARDED_BY(mu_);
};

// The test service "svc": the shared outbox migration and a table of its own.
const postgres::MigrationSet& Schema() { return OutboxTestMigrations(); }

v1::Event MakeEvent(const std::string& key) {
  v1::Event e;
  e.set_action(v1::AUDIT_ACTION_REPOSITORY_REGISTERED);
  e.set_idempotency_key(key);
  e.mutable_subject()->set_repository_id(key);
  return e;
}

// Inserts a "thing" and its audit event in one transaction; fails the
// transaction after enqueueing when `fail` is set.
absl::Status CreateThing(postgres::ConnectionPool& pool, OutboxStore& store, const std::string& name, bool fail) {
  return pool.RunInTransaction([&](pqxx::work& txn) -> absl::Status {
    txn.exec_params0("INSERT INTO svc.things (name) VALUES ($1)", name);
    absl::Status s = store.Enqueue(txn, MakeEvent("thing-" + name));
    if (!s.ok()) return s;
    return fail ? absl::AbortedError("later step failed") : absl::OkStatus();
  });
}

template <typename F>
bool WaitFor(F pred, absl::Duration timeout = absl::Seconds(10)) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (pred()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return pred();
}

TEST(OutboxTest, EventIsDeliveredOnlyWhenItsTransactionCommits) {
  testing::TestDatabase db;
  auto pool = db.Pool();
  ASSERT_TRUE(postgres::Migrate(*pool, Schema()).ok());
  PostgresOutboxStore store(pool.get(), "svc", "test");
  ASSERT_TRUE(CreateThing(*pool, store, "a", false).ok());
  EXPECT_FALSE(CreateThing(*pool, store, "b", true).ok());
  FakeAuditSink sink;
  prometheus::Registry registry;
  OutboxForwarder forwarder("test", "svc_outbox", &store, &sink, nullptr, &registry);
  ASSERT_TRUE(forwarder.DrainOnce().ok());
  EXPECT_EQ(sink.keys(), std::vector<std::string>{"thing-a"});
  EXPECT_EQ(*store.Backlog(), 0);
}

TEST(OutboxTest, AnEventWithoutATimeGetsTheEnqueueTimeToTheMicrosecond) {
  testing::TestDatabase db;
  auto pool = db.Pool();
  ASSERT_TRUE(postgres::Migrate(*pool, Schema()).ok());
  PostgresOutboxStore store(pool.get(), "svc", "test");
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(CreateThing(*pool, store, absl::StrCat("t", i), false).ok());
    absl::SleepFor(absl::Milliseconds(3));
  }
  auto unsent = store.FetchUnsent(10);
  ASSERT_TRUE(unsent.ok()) << unsent.status();
  ASSERT_EQ(unsent->size(), 3u);
  for (size_t i = 1; i < unsent->size(); ++i) {
    EXPECT_LT((*unsent)[i - 1].event.time(), (*unsent)[i].event.time()) << "times 3 ms apart are distinct";
  }
  EXPECT_LT(std::abs(google::protobuf::util::TimeUtil::TimestampToMicroseconds((*unsent)[2].event.time()) -
                     absl::ToUnixMicros(absl::Now())),
            5'000'000);
}

// A comment or reason longer than the audit service takes used to make the
// event refused there (kept in the outbox, never in the log); it is cut to
// fit instead, at a character boundary.
TEST(OutboxTest, LongFreeTextIsCutToWhatTheAuditServiceTakes) {
  testing::TestDatabase db;
  auto pool = db.Pool();
  ASSERT_TRUE(postgres::Migrate(*pool, Schema()).ok());
  PostgresOutboxStore store(pool.get(), "svc", "test");
  v1::Event e = MakeEvent("long");
  std::string message = "approved: ";
  while (message.size() < 2 * kMaxAuditMessageBytes) message += "\xC3\xA9t\xC3\xA9 ";  // "été ", 2-byte characters
  e.set_message(message);
  e.mutable_subject()->set_ref(std::string(300, 'r'));
  ASSERT_TRUE(pool->RunInTransaction([&](pqxx::work& txn) { return store.Enqueue(txn, e); }).ok());
  auto unsent = store.FetchUnsent(10);
  ASSERT_TRUE(unsent.ok()) << unsent.status();
  ASSERT_EQ(unsent->size(), 1u);
  const v1::Event& stored = (*unsent)[0].event;
  EXPECT_LE(stored.message().size(), kMaxAuditMessageBytes);
  EXPECT_GT(stored.message().size(), kMaxAuditMessageBytes - 8);
  EXPECT_EQ(stored.message().substr(0, 10), "approved: ");
  EXPECT_EQ(stored.message().substr(stored.message().size() - 3), "\xE2\x80\xA6");
  // Whole characters only: the byte before the ellipsis ends one.
  const std::string body = stored.message().substr(0, stored.message().size() - 3);
  EXPECT_TRUE(body.back() == ' ' || body.back() == 't' || static_cast<unsigned char>(body.back()) == 0xA9) << body.back();
  EXPECT_LE(stored.subject().ref().size(), kMaxAuditIdBytes);
  EXPECT_EQ(FitText("short", 10), "short");
}

// Events quote input from Git. A byte that is not UTF-8 in any string of an
// event made the whole batch unparseable for the audit service (proto3
// strings are UTF-8), so it was refused at every retry; every string is made
// valid on the way in, the bad bytes shown as \xNN. NUL is valid UTF-8 but
// PostgreSQL text (the audit log) cannot store it: shown as \x00.
TEST(OutboxTest, BytesThatAreNotUtf8AreEscapedInEveryStringOfTheEvent) {
  testing::TestDatabase db;
  auto pool = db.Pool();
  ASSERT_TRUE(postgres::Migrate(*pool, Schema()).ok());
  PostgresOutboxStore store(pool.get(), "svc", "test");
  v1::Event e = MakeEvent("utf8");
  const char kMessage[] = "render of apps/caf\xE9/\xFF.yaml failed: \0 at 1";
  e.set_message(std::string(kMessage, sizeof kMessage - 1));
  e.mutable_subject()->set_ref("refs/heads/\xC3(");
  e.mutable_actor()->set_display_name("M\xFCller");
  (*e.mutable_details()->mutable_fields())["path"].set_string_value("\xFE\xFF");
  (*e.mutable_details()->mutable_fields())["k\xFF"].mutable_list_value()->add_values()->set_string_value("\x80");
  ASSERT_TRUE(pool->RunInTransaction([&](pqxx::work& txn) { return store.Enqueue(txn, e); }).ok());
  auto unsent = store.FetchUnsent(10);
  ASSERT_TRUE(unsent.ok()) << unsent.status();
  ASSERT_EQ(unsent->size(), 1u);
  const v1::Event& stored = (*unsent)[0].event;
  EXPECT_EQ(stored.message(), "render of apps/caf\\xE9/\\xFF.yaml failed: \\x00 at 1");
  EXPECT_EQ(stored.subject().ref(), "refs/heads/\\xC3(");
  EXPECT_EQ(stored.actor().display_name(), "M\\xFCller");
  EXPECT_EQ(stored.details().fields().at("path").string_value(), "\\xFE\\xFF");
  ASSERT_EQ(stored.details().fields().count("k\\xFF"), 1u);
  EXPECT_EQ(stored.details().fields().at("k\\xFF").list_value().values(0).string_value(), "\\x80");
  // What the audit service receives parses.
  v1::Event parsed;
  EXPECT_TRUE(parsed.ParseFromString(stored.SerializeAsString()));
}

// An actor id is an identity, not free text: too long, it fails the change
// it would record (the caller gets INVALID_ARGUMENT and nothing commits).
TEST(OutboxTest, AnActorIdTheAuditLogWouldRefuseFailsTheTransaction) {
  testing::TestDatabase db;
  auto pool = db.Pool();
  ASSERT_TRUE(postgres::Migrate(*pool, Schema()).ok());
  PostgresOutboxStore store(pool.get(), "svc", "test");
  v1::Event e = MakeEvent("long-actor");
  e.mutable_actor()->set_id(std::string(kMaxAuditIdBytes + 1, 'a'));
  absl::Status s = pool->RunInTransaction([&](pqxx::work& txn) { return store.Enqueue(txn, e); });
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_EQ(s.message().rfind("actor.id: longer than 256 bytes", 0), 0u) << s;
  EXPECT_EQ(*store.Backlog(), 0);
  e.mutable_actor()->set_id(std::string(kMaxAuditIdBytes, 'a'));
  EXPECT_TRUE(pool->RunInTransaction([&](pqxx::work& txn) { return store.Enqueue(txn, e); }).ok());
}

TEST(OutboxTest, RejectsEventWithoutIdempotencyKey) {
  testing::TestDatabase db;
  auto pool = db.Pool();
  ASSERT_TRUE(postgres::Migrate(*pool, Schema()).ok());
  PostgresOutboxStore store(pool.get(), "svc", "test");
  absl::Status s = pool->RunInTransaction([&](pqxx::work& txn) { return store.Enqueue(txn, MakeEvent("")); });
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("idempotency_key"), std::string::npos);
}

TEST(OutboxTest, EventsWaitWhileAuditIsDownAndArriveInOrderWithoutDuplicates) {
  testing::TestDatabase db;
  auto pool = db.Pool();
  ASSERT_TRUE(postgres::Migrate(*pool, Schema()).ok());
  PostgresOutboxStore store(pool.get(), "svc", "test");
  FakeAuditSink sink;
  sink.SetDown(true);
  prometheus::Registry registry;
  OutboxForwarder forwarder("test", PostgresOutboxStore::NotifyChannel("svc"), &store, &sink, pool.get(), &registry,
                            {.batch_size = 3, .initial_backoff = absl::Milliseconds(20),
                             .max_backoff = absl::Milliseconds(100), .idle_poll = absl::Seconds(5)});
  forwarder.Start();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(CreateThing(*pool, store, std::to_string(i), false).ok());
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_TRUE(sink.keys().empty());
  EXPECT_EQ(*store.Backlog(), 10);
  sink.SetDown(false);
  ASSERT_TRUE(WaitFor([&] { return sink.keys().size() == 10; })) << sink.keys().size();
  std::vector<std::string> expected;
  for (int i = 0; i < 10; ++i) expected.push_back("thing-" + std::to_string(i));
  EXPECT_EQ(sink.keys(), expected);
  EXPECT_TRUE(WaitFor([&] { return *store.Backlog() == 0; }));
  forwarder.Stop();
}

// A started forwarder of `store` that wakes on its pool's commits to the
// outbox only (the idle poll is a minute), into a FakeAuditSink.
struct ListeningForwarder {
  ListeningForwarder(postgres::ConnectionPool* pool, OutboxStore* store)
      : forwarder("test", PostgresOutboxStore::NotifyChannel("svc"), store, &sink, pool, &registry,
                  {.idle_poll = absl::Seconds(60)}) {
    forwarder.Start();
    // Its first round (reading an empty outbox) over before the test writes.
    absl::SleepFor(absl::Milliseconds(100));
  }
  FakeAuditSink sink;
  prometheus::Registry registry;
  OutboxForwarder forwarder;
};

TEST(OutboxTest, ACommitDeliversPromptlyWithoutWaitingForThePoll) {
  testing::TestDatabase db;
  auto pool = db.Pool();
  ASSERT_TRUE(postgres::Migrate(*pool, Schema()).ok());
  PostgresOutboxStore store(pool.get(), "svc", "test");
  ListeningForwarder listening(pool.get(), &store);
  ASSERT_TRUE(CreateThing(*pool, store, "fast", false).ok());
  EXPECT_TRUE(WaitFor([&] { return listening.sink.keys().size() == 1; }, absl::Seconds(5)));
  // A rolled-back event wakes it too (one look), and is not delivered.
  EXPECT_FALSE(CreateThing(*pool, store, "gone", true).ok());
  ASSERT_TRUE(CreateThing(*pool, store, "next", false).ok());
  EXPECT_TRUE(WaitFor([&] { return listening.sink.keys().size() == 2; }, absl::Seconds(5)));
  EXPECT_EQ(listening.sink.keys(), (std::vector<std::string>{"thing-fast", "thing-next"}));
  listening.forwarder.Stop();
  // Stopped: no longer woken.
  ASSERT_TRUE(CreateThing(*pool, store, "late", false).ok());
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(listening.sink.keys().size(), 2u);
}

// Issue #23: a NOTIFY per commit to the outbox took a database-wide lock at
// every commit and woke every LISTEN backend of the database (about a tenth
// of PostgreSQL's CPU when every deployment step wrote an event). The
// forwarder is woken in-process instead; nothing is sent on the channel.
TEST(OutboxTest, EnqueueSendsNoNotify) {
  testing::TestDatabase db;
  auto pool = db.Pool();
  ASSERT_TRUE(postgres::Migrate(*pool, Schema()).ok());
  PostgresOutboxStore store(pool.get(), "svc", "test");
  pqxx::connection listener(db.url());
  struct Receiver : pqxx::notification_receiver {
    using pqxx::notification_receiver::notification_receiver;
    void operator()(const std::string& payload, int) override { got.push_back(payload); }
    std::vector<std::string> got;
  } receiver(listener, PostgresOutboxStore::NotifyChannel("svc"));
  ASSERT_TRUE(CreateThing(*pool, store, "one", false).ok());
  ASSERT_TRUE(pool->RunInTransaction([&](pqxx::work& txn) {
                     return store.EnqueueAll(txn, {MakeEvent("two"), MakeEvent("three")});
                   }).ok());
  // A NOTIFY sent in the same session after them arrives: anything sent
  // before it would have arrived first.
  ASSERT_TRUE(pool->RunStatement([](pqxx::transaction_base& t) {
                     t.exec0("NOTIFY svc_outbox, 'marker'");
                     return absl::OkStatus();
                   }).ok());
  for (int i = 0; i < 50 && receiver.got.empty(); ++i) listener.await_notification(0, 100000);
  EXPECT_EQ(receiver.got, std::vector<std::string>{"marker"});
  EXPECT_EQ(*store.Backlog(), 3);
}

// EnqueueAll writes several events in one statement: each is completed and
// sanitized as Enqueue does, they keep their order, a refused one (bad or
// reused key) leaves none of them, and the forwarders are woken at commit.
TEST(OutboxTest, EventsEnqueuedTogetherKeepTheirOrderAndCommitAllOrNone) {
  testing::TestDatabase db;
  auto pool = db.Pool();
  ASSERT_TRUE(postgres::Migrate(*pool, Schema()).ok());
  PostgresOutboxStore store(pool.get(), "svc", "test");
  ListeningForwarder listening(pool.get(), &store);
  FakeAuditSink& sink = listening.sink;
  auto enqueue_all = [&](std::vector<v1::Event> events) {
    return pool->RunInTransaction([&](pqxx::work& txn) { return store.EnqueueAll(txn, events); });
  };
  v1::Event odd = MakeEvent("b");
  const char kMessage[] = "caf\xE9 \0 \xFF";
  odd.set_message(std::string(kMessage, sizeof kMessage - 1));
  // Keys that need quoting in an array literal, and a binary-heavy body.
  v1::Event quoted = MakeEvent("c \"{x},\\ y\"");
  (*quoted.mutable_details()->mutable_fields())["blob"].set_string_value(std::string(3000, '+'));
  ASSERT_TRUE(enqueue_all({MakeEvent("a"), odd, quoted, MakeEvent("d")}).ok());
  ASSERT_TRUE(WaitFor([&] { return sink.keys().size() == 4; }, absl::Seconds(5))) << sink.keys().size();
  listening.forwarder.Stop();
  EXPECT_EQ(sink.keys(), (std::vector<std::string>{"a", "b", "c \"{x},\\ y\"", "d"}));

  ASSERT_TRUE(enqueue_all({MakeEvent("e"), MakeEvent("f")}).ok());
  absl::StatusOr<std::vector<PendingEvent>> unsent = store.FetchUnsent(10);
  ASSERT_TRUE(unsent.ok()) << unsent.status();
  ASSERT_EQ(unsent->size(), 2u);
  EXPECT_LT((*unsent)[0].id, (*unsent)[1].id);
  EXPECT_EQ((*unsent)[0].event.idempotency_key(), "e");
  EXPECT_EQ((*unsent)[0].event.service(), "test");
  EXPECT_TRUE((*unsent)[0].event.has_time());
  EXPECT_EQ((*unsent)[0].event.actor().id(), "ferry");

  // A reused key, or a key missing, fails the whole transaction.
  absl::Status reused = enqueue_all({MakeEvent("g"), MakeEvent("e")});
  EXPECT_EQ(reused.code(), absl::StatusCode::kAlreadyExists) << reused;
  absl::Status missing = enqueue_all({MakeEvent("h"), MakeEvent(""), MakeEvent("i")});
  EXPECT_EQ(missing.code(), absl::StatusCode::kInvalidArgument) << missing;
  EXPECT_EQ(*store.Backlog(), 2);
}

TEST(OutboxTest, RefusedEventDoesNotBlockTheOthers) {
  testing::TestDatabase db;
  auto pool = db.Pool();
  ASSERT_TRUE(postgres::Migrate(*pool, Schema()).ok());
  PostgresOutboxStore store(pool.get(), "svc", "test");
  FakeAuditSink sink;
  sink.refuse_key_ = "thing-b";
  for (const char* n : {"a", "b", "c"}) ASSERT_TRUE(CreateThing(*pool, store, n, false).ok());
  prometheus::Registry registry;
  OutboxForwarder forwarder("test", "svc_outbox", &store, &sink, nullptr, &registry);
  ASSERT_TRUE(forwarder.DrainOnce().ok());
  EXPECT_EQ(sink.keys(), (std::vector<std::string>{"thing-a", "thing-c"}));
  EXPECT_EQ(*store.Backlog(), 0);
}

}  // namespace
}  // namespace ferry::outbox
