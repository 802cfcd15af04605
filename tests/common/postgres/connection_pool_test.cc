#include "common/postgres/connection_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "tests/support/test_database.h"

namespace ferry::postgres {
namespace {

TEST(ConnectionPoolTest, CommitsOnOkAndRollsBackOnError) {
  testing::TestDatabase db;
  auto pool = db.Pool();
  ASSERT_TRUE(pool->RunInTransaction([](pqxx::work& t) {
                     t.exec0("CREATE TABLE t (k text PRIMARY KEY)");
                     return absl::OkStatus();
                   }).ok());
  pool->Prepare("insert_k", "INSERT INTO t (k) VALUES ($1)");
  ASSERT_TRUE(pool->RunInTransaction([](pqxx::work& t) {
                     t.exec_prepared0("insert_k", "a");
                     return absl::OkStatus();
                   }).ok());
  absl::Status failed = pool->RunInTransaction([](pqxx::work& t) {
    t.exec_prepared0("insert_k", "b");
    return absl::CancelledError("caller gave up");
  });
  EXPECT_EQ(failed.code(), absl::StatusCode::kCancelled);
  auto count = pool->RunInTransactionWithResult<int>(
      [](pqxx::work& t) -> absl::StatusOr<int> { return t.exec1("SELECT count(*) FROM t")[0].as<int>(); });
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 1);
}

TEST(ConnectionPoolTest, RunStatementRunsOutsideATransactionBlock) {
  // No BEGIN and COMMIT around it: each statement is its own transaction
  // (two calls to txid_current() get two ids), and a write commits at once.
  testing::TestDatabase db;
  auto pool = db.Pool();
  ASSERT_TRUE(pool->RunStatement([](pqxx::transaction_base& t) {
                     t.exec0("CREATE TABLE t (k text PRIMARY KEY)");
                     return absl::OkStatus();
                   }).ok());
  auto ids = pool->RunStatementWithResult<std::pair<int64_t, int64_t>>(
      [](pqxx::transaction_base& t) -> absl::StatusOr<std::pair<int64_t, int64_t>> {
        int64_t a = t.exec1("SELECT txid_current()")[0].as<int64_t>();
        int64_t b = t.exec1("SELECT txid_current()")[0].as<int64_t>();
        return std::make_pair(a, b);
      });
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_NE(ids->first, ids->second);
  auto in_block = pool->RunInTransactionWithResult<std::pair<int64_t, int64_t>>(
      [](pqxx::work& t) -> absl::StatusOr<std::pair<int64_t, int64_t>> {
        int64_t a = t.exec1("SELECT txid_current()")[0].as<int64_t>();
        int64_t b = t.exec1("SELECT txid_current()")[0].as<int64_t>();
        return std::make_pair(a, b);
      });
  ASSERT_TRUE(in_block.ok()) << in_block.status();
  EXPECT_EQ(in_block->first, in_block->second);
  // A statement that fails leaves nothing and says why, as a transaction's.
  pool->Prepare("insert_k", "INSERT INTO t (k) VALUES ($1)");
  ASSERT_TRUE(pool->RunStatement([](pqxx::transaction_base& t) {
                     t.exec_prepared0("insert_k", "a");
                     return absl::OkStatus();
                   }).ok());
  absl::Status dup = pool->RunStatement([](pqxx::transaction_base& t) {
    t.exec_prepared0("insert_k", "a");
    return absl::OkStatus();
  });
  EXPECT_EQ(dup.code(), absl::StatusCode::kAlreadyExists) << dup;
  int runs = 0;
  absl::Status retried = pool->RunStatement([&](pqxx::transaction_base& t) {
    if (++runs == 1) t.exec0("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$");
    return absl::OkStatus();
  });
  EXPECT_TRUE(retried.ok()) << retried;
  EXPECT_EQ(runs, 2);
  auto count = pool->RunStatementWithResult<int>(
      [](pqxx::transaction_base& t) -> absl::StatusOr<int> { return t.exec1("SELECT count(*) FROM t")[0].as<int>(); });
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 1);
}

TEST(ConnectionPoolTest, TranslatesUniqueViolationToAlreadyExists) {
  testing::TestDatabase db;
  auto pool = db.Pool();
  ASSERT_TRUE(pool->RunInTransaction([](pqxx::work& t) {
                     t.exec0("CREATE TABLE t (k text PRIMARY KEY, n int CHECK (n > 0))");
                     t.exec0("INSERT INTO t VALUES ('a', 1)");
                     return absl::OkStatus();
                   }).ok());
  absl::Status dup = pool->RunInTransaction([](pqxx::work& t) {
    t.exec0("INSERT INTO t VALUES ('a', 2)");
    return absl::OkStatus();
  });
  EXPECT_EQ(dup.code(), absl::StatusCode::kAlreadyExists) << dup;
  absl::Status check = pool->RunInTransaction([](pqxx::work& t) {
    t.exec0("INSERT INTO t VALUES ('b', -1)");
    return absl::OkStatus();
  });
  EXPECT_EQ(check.code(), absl::StatusCode::kFailedPrecondition) << check;
  absl::Status syntax = pool->RunInTransaction([](pqxx::work& t) {
    t.exec0("SELEC 1");
    return absl::OkStatus();
  });
  EXPECT_EQ(syntax.code(), absl::StatusCode::kInternal) << syntax;
}

TEST(ConnectionPoolTest, NeverOpensMoreThanItsSize) {
  testing::TestDatabase db;
  auto pool = db.Pool(2);
  std::atomic<int> inside{0}, most{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&] {
      EXPECT_TRUE(pool->RunInTransaction([&](pqxx::work& t) {
                         int now = ++inside;
                         int prev = most.load();
                         while (now > prev && !most.compare_exchange_weak(prev, now)) {
                         }
                         t.exec("SELECT pg_sleep(0.05)");
                         --inside;
                         return absl::OkStatus();
                       }).ok());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(most.load(), 2);
}

TEST(ConnectionPoolTest, AbortedReturnedByTheCallbackRunsItOnce) {
  // An ABORTED the callback returns ("changed meanwhile") is its answer, not
  // a conflict PostgreSQL raised: running it again cannot help.
  testing::TestDatabase db;
  auto pool = db.Pool();
  int runs = 0;
  absl::Status status = pool->RunInTransaction([&](pqxx::work& t) {
    ++runs;
    t.exec("SELECT 1");
    return absl::AbortedError("the plan changed meanwhile");
  });
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
  EXPECT_EQ(status.message(), "the plan changed meanwhile");
  EXPECT_EQ(runs, 1);
}

TEST(ConnectionPoolTest, SerializationFailureRaisedByPostgresIsRetried) {
  testing::TestDatabase db;
  auto pool = db.Pool();
  int runs = 0;
  absl::Status status = pool->RunInTransaction([&](pqxx::work& t) {
    if (++runs == 1) t.exec0("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$");
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(runs, 2);
}

TEST(ConnectionPoolTest, DeadlockRaisedByPostgresIsRetriedThenAborted) {
  testing::TestDatabase db;
  auto pool = db.Pool();
  int runs = 0;
  absl::Status status = pool->RunInTransaction([&](pqxx::work& t) {
    ++runs;
    t.exec0("DO $$ BEGIN RAISE EXCEPTION 'deadlock' USING ERRCODE = '40P01'; END $$");
    return absl::OkStatus();
  });
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
  EXPECT_EQ(runs, 3);
}

TEST(ConnectionPoolTest, UnreachableServerIsUnavailableNamingAddress) {
  auto pool = ConnectionPool::Connect(
      {.url = "postgresql://ferry:secret@127.0.0.1:1/ferry", .size = 1, .connect_timeout = absl::Milliseconds(300)});
  ASSERT_FALSE(pool.ok());
  EXPECT_EQ(pool.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(pool.status().message().find("127.0.0.1:1/ferry"), std::string::npos) << pool.status();
  EXPECT_EQ(pool.status().message().find("secret"), std::string::npos) << pool.status();
}

TEST(ConnectionPoolTest, RedactsCredentials) {
  EXPECT_EQ(*RedactedAddress("postgresql://u:pw@db.example:6543/ferry?sslmode=require"), "db.example:6543/ferry");
  EXPECT_EQ(*RedactedAddress("host=/tmp/x port=5 dbname=d password=pw"), "/tmp/x:5/d");
  EXPECT_EQ(RedactedAddress("postgresql://[bad").status().code(), absl::StatusCode::kInvalidArgument);
  // libpq's parse errors quote what they could not parse: a piece of the
  // password, or the whole URL. The message keeps the reason, not the text.
  for (const char* url : {"postgresql://ferry:s3cr3t%zz@db/ferry", "postgresql://ferry:s3cr3t@[::1/ferry",
                          "host=db s3cr3t"}) {
    absl::StatusOr<std::string> bad = RedactedAddress(url);
    ASSERT_FALSE(bad.ok()) << url;
    EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << url;
    EXPECT_EQ(bad.status().message().find("s3cr3t"), std::string::npos) << bad.status();
    EXPECT_EQ(bad.status().message().rfind("database URL is malformed: ", 0), 0u) << bad.status();
  }
}

// Local wake-ups (issue #23, in place of NOTIFY for the outbox forwarders):
// a listener of a channel runs once when a transaction of its pool that
// named the channel ends, after the commit, not before; for a statement
// outside a transaction block too; at once outside any; never after it
// stopped listening, and only for its own channel and pool.
TEST(ConnectionPoolTest, WakeAfterCommitWakesLocalListenersOnceTheTransactionEnds) {
  testing::TestDatabase db;
  auto pool = db.Pool();
  auto other = db.Pool();
  ASSERT_TRUE(pool->RunStatement([](pqxx::transaction_base& t) {
                     t.exec0("CREATE TABLE w (k text PRIMARY KEY)");
                     return absl::OkStatus();
                   }).ok());
  auto rows = [&] {
    return *other->RunStatementWithResult<int>(
        [](pqxx::transaction_base& t) -> absl::StatusOr<int> { return t.exec1("SELECT count(*) FROM w")[0].as<int>(); });
  };
  int woken = 0, other_channel = 0;
  int rows_when_woken = -1;
  ConnectionPool::LocalListenerId id = pool->ListenLocally("things", [&] {
    ++woken;
    rows_when_woken = rows();
  });
  ConnectionPool::LocalListenerId id2 = pool->ListenLocally("other", [&] { ++other_channel; });
  ASSERT_TRUE(pool->RunInTransaction([&](pqxx::work& t) {
                     t.exec0("INSERT INTO w VALUES ('a')");
                     pool->WakeAfterCommit("things");
                     pool->WakeAfterCommit("things");  // once per transaction
                     other->WakeAfterCommit("things");  // another pool: its own listeners (none)
                     EXPECT_EQ(woken, 0);              // not before the commit
                     return absl::OkStatus();
                   }).ok());
  EXPECT_EQ(woken, 1);
  EXPECT_EQ(rows_when_woken, 1);
  EXPECT_EQ(other_channel, 0);

  // A statement outside a transaction block, and a transaction within
  // another pool's.
  ASSERT_TRUE(other->RunInTransaction([&](pqxx::work&) {
                     return pool->RunStatement([&](pqxx::transaction_base& t) {
                       t.exec0("INSERT INTO w VALUES ('b')");
                       pool->WakeAfterCommit("things");
                       return absl::OkStatus();
                     });
                   }).ok());
  EXPECT_EQ(woken, 2);
  EXPECT_EQ(rows_when_woken, 2);

  // A failed transaction still wakes (a look too many, never one missed).
  EXPECT_FALSE(pool->RunInTransaction([&](pqxx::work& t) {
                      pool->WakeAfterCommit("things");
                      return absl::InternalError("gave up");
                    }).ok());
  EXPECT_EQ(woken, 3);

  // Outside any transaction: at once.
  pool->WakeAfterCommit("things");
  EXPECT_EQ(woken, 4);
  pool->StopListeningLocally(id);
  pool->WakeAfterCommit("things");
  EXPECT_EQ(woken, 4);
  EXPECT_EQ(other_channel, 0);
  pool->StopListeningLocally(id2);
}

}  // namespace
}  // namespace ferry::postgres
