#include "common/postgres/migrator.h"

#include <gtest/gtest.h>

#include <thread>

#include "tests/support/test_database.h"

namespace ferry::postgres {
namespace {

MigrationSet Set() {
  return {"svc",
          {{1, "001_a.sql", "CREATE TABLE a (id int PRIMARY KEY);"},
           {2, "002_b.sql", "CREATE TABLE b (id int PRIMARY KEY); INSERT INTO a VALUES (1);"}},
          ""};
}

int Count(ConnectionPool& pool, const std::string& sql) {
  return *pool.RunInTransactionWithResult<int>(
      [&](pqxx::work& t) -> absl::StatusOr<int> { return t.exec1(sql)[0].as<int>(); });
}

TEST(MigratorTest, AppliesEachMigrationOnceIntoTheSchema) {
  testing::TestDatabase db;
  auto pool = db.Pool();
  ASSERT_TRUE(Migrate(*pool, Set()).ok());
  ASSERT_TRUE(Migrate(*pool, Set()).ok());
  EXPECT_EQ(Count(*pool, "SELECT count(*) FROM svc.a"), 1);
  EXPECT_EQ(Count(*pool, "SELECT count(*) FROM svc.schema_migrations"), 2);
}

TEST(MigratorTest, ConcurrentReplicasMigrateOnce) {
  testing::TestDatabase db;
  std::vector<std::thread> replicas;
  std::vector<absl::Status> results(4);
  for (int i = 0; i < 4; ++i) {
    replicas.emplace_back([&, i] {
      auto pool = db.Pool(1);
      results[i] = Migrate(*pool, Set());
    });
  }
  for (auto& t : replicas) t.join();
  for (const auto& s : results) EXPECT_TRUE(s.ok()) << s;
  auto pool = db.Pool();
  EXPECT_EQ(Count(*pool, "SELECT count(*) FROM svc.a"), 1);
}

TEST(MigratorTest, FailedMigrationLeavesNothingAndNamesTheFile) {
  testing::TestDatabase db;
  auto pool = db.Pool();
  MigrationSet bad = Set();
  bad.migrations.push_back({3, "003_broken.sql", "CREATE TABLE c (id int); SELECT no_such_column FROM c;"});
  absl::Status s = Migrate(*pool, bad);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("003_broken.sql"), std::string::npos) << s;
  EXPECT_EQ(Count(*pool, "SELECT count(*) FROM pg_tables WHERE schemaname = 'svc'"), 0);
}

TEST(MigratorTest, RefusesSchemaNewerThanBinary) {
  testing::TestDatabase db;
  auto pool = db.Pool();
  ASSERT_TRUE(Migrate(*pool, Set()).ok());
  MigrationSet older = Set();
  older.migrations.pop_back();
  EXPECT_EQ(Migrate(*pool, older).code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace ferry::postgres
