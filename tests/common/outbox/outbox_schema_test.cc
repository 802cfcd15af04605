// The outbox DDL lives once, in common/outbox/schema/001_outbox.sql, and is
// migration 001 of the planner, the deployer and the repo-watcher. Databases
// migrated before it moved there have 001 recorded as applied; these tests
// check that both kinds of database end with the same outbox.
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/postgres/migrator.h"
#include "deployer_migrations.h"
#include "planner_migrations.h"
#include "repo_watcher_migrations.h"
#include "tests/support/test_database.h"

namespace ferry::outbox {
namespace {

// services/{planner,deployer,repo-watcher}/schema/001_outbox.sql as each
// service had it before the DDL moved to common/outbox: what existing
// databases ran as their migration 001.
constexpr char kHistorical001[] = R"sql(-- Transactional outbox for audit events. A row is written in the same
-- transaction as the state change it reports; the forwarder delivers it to
-- the audit service and marks it sent.
CREATE TABLE IF NOT EXISTS outbox (
  id              bigserial PRIMARY KEY,
  idempotency_key text NOT NULL UNIQUE,
  event           bytea NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  attempts        integer NOT NULL DEFAULT 0,
  last_error      text,
  sent_at         timestamptz
);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
)sql";

struct Service {
  const char* name;
  const postgres::MigrationSet& (*migrations)();
};

const std::vector<Service>& Services() {
  static const auto* services = new std::vector<Service>{
      {"planner", &PlannerMigrations}, {"deployer", &DeployerMigrations}, {"repo-watcher", &RepoWatcherMigrations}};
  return *services;
}

std::string Query(postgres::ConnectionPool& pool, const std::string& sql) {
  return *pool.RunInTransactionWithResult<std::string>([&](pqxx::work& t) -> absl::StatusOr<std::string> {
    std::vector<std::string> rows;
    for (const pqxx::row& row : t.exec(sql)) {
      std::vector<std::string> cells;
      for (const pqxx::field& f : row) cells.push_back(f.is_null() ? "NULL" : f.c_str());
      rows.push_back(absl::StrJoin(cells, "|"));
    }
    return absl::StrJoin(rows, "\n");
  });
}

// The outbox table of `schema` as PostgreSQL sees it: columns, constraints
// and indexes (with the schema name taken out).
std::string OutboxDefinition(postgres::ConnectionPool& pool, const std::string& schema) {
  const std::string columns = Query(pool, absl::StrCat(
      "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns "
      "WHERE table_schema = '", schema, "' AND table_name = 'outbox' ORDER BY ordinal_position"));
  const std::string constraints = Query(pool, absl::StrCat(
      "SELECT conname, pg_get_constraintdef(c.oid) FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
      "JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = '", schema, "' AND t.relname = 'outbox' "
      "ORDER BY conname"));
  const std::string indexes = Query(pool, absl::StrCat(
      "SELECT indexname, replace(indexdef, '", schema, ".', '') FROM pg_indexes WHERE schemaname = '", schema,
      "' AND tablename = 'outbox' ORDER BY indexname"));
  return absl::StrCat(columns, "\n--\n", constraints, "\n--\n", indexes);
}

TEST(OutboxSchemaTest, EveryOutboxServiceHasTheSharedDdlAsMigration001) {
  for (const Service& s : Services()) {
    const postgres::MigrationSet& set = s.migrations();
    ASSERT_FALSE(set.migrations.empty()) << s.name;
    EXPECT_EQ(set.migrations[0].version, 1) << s.name;
    EXPECT_EQ(set.migrations[0].name, "001_outbox.sql") << s.name;
    EXPECT_NE(set.migrations[0].sql.find("CREATE TABLE IF NOT EXISTS outbox"), std::string::npos) << s.name;
    // One DDL: the same text in each service.
    EXPECT_EQ(set.migrations[0].sql, Services()[0].migrations().migrations[0].sql) << s.name;
    for (size_t i = 1; i < set.migrations.size(); ++i) {
      EXPECT_LT(set.migrations[i - 1].version, set.migrations[i].version) << s.name << ": not in version order";
    }
  }
}

TEST(OutboxSchemaTest, FreshDatabaseGetsTheOutboxOfBefore) {
  for (const Service& s : Services()) {
    const postgres::MigrationSet& set = s.migrations();
    // Reference: the historical migration 001 alone.
    testing::TestDatabase before;
    auto before_pool = before.Pool(1);
    ASSERT_TRUE(postgres::Migrate(*before_pool, {set.schema, {{1, "001_outbox.sql", kHistorical001}}, ""}).ok());
    testing::TestDatabase fresh;
    auto fresh_pool = fresh.Pool(1);
    absl::Status migrated = postgres::Migrate(*fresh_pool, set);
    ASSERT_TRUE(migrated.ok()) << s.name << ": " << migrated;
    const std::string want = OutboxDefinition(*before_pool, set.schema);
    EXPECT_NE(want.find("idempotency_key"), std::string::npos) << want;
    EXPECT_NE(want.find("outbox_unsent"), std::string::npos) << want;
    EXPECT_EQ(OutboxDefinition(*fresh_pool, set.schema), want) << s.name;
  }
}

TEST(OutboxSchemaTest, DatabaseWith001AppliedMigratesOnKeepingItsOutbox) {
  for (const Service& s : Services()) {
    const postgres::MigrationSet& set = s.migrations();
    testing::TestDatabase db;
    auto pool = db.Pool(1);
    // What a binary from before the move left: 001 applied and recorded, an
    // undelivered event in the outbox.
    ASSERT_TRUE(postgres::Migrate(*pool, {set.schema, {{1, "001_outbox.sql", kHistorical001}}, ""}).ok());
    const std::string before = OutboxDefinition(*pool, set.schema);
    ASSERT_TRUE(pool->RunInTransaction([&](pqxx::work& t) -> absl::Status {
                      t.exec0(absl::StrCat("INSERT INTO ", t.quote_name(set.schema),
                                           ".outbox (idempotency_key, event) VALUES ('k1', '\\x01')"));
                      return absl::OkStatus();
                    })
                    .ok());
    absl::Status migrated = postgres::Migrate(*pool, set);
    ASSERT_TRUE(migrated.ok()) << s.name << ": " << migrated;
    EXPECT_EQ(OutboxDefinition(*pool, set.schema), before) << s.name;
    EXPECT_EQ(Query(*pool, absl::StrCat("SELECT idempotency_key FROM ", set.schema, ".outbox WHERE sent_at IS NULL")),
              "k1")
        << s.name;
    // 001 is not applied again; every other migration is, once.
    EXPECT_EQ(Query(*pool, absl::StrCat("SELECT count(*) FROM ", set.schema, ".schema_migrations WHERE version = 1")),
              "1");
    EXPECT_EQ(Query(*pool, absl::StrCat("SELECT count(*) FROM ", set.schema, ".schema_migrations")),
              absl::StrCat(set.migrations.size()))
        << s.name;
    // And a later start finds nothing to do.
    EXPECT_TRUE(postgres::Migrate(*pool, set).ok()) << s.name;
  }
}

}  // namespace
}  // namespace ferry::outbox
