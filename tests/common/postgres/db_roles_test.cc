// Per-service database roles (docs/operations.md "Database roles",
// helm/ferry/files/db-roles.sql, each schema's privileges.sql): migrations run
// as the NOLOGIN owner through the migrator role; each service's login role
// reaches its own schema's rows and the API tokens, nothing else; the audit
// log cannot be changed or unprotected by any service.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "access_migrations.h"
#include "audit_migrations.h"
#include "common/postgres/migrator.h"
#include "deployer_migrations.h"
#include "notifier_migrations.h"
#include "planner_migrations.h"
#include "repo_watcher_migrations.h"
#include "tests/support/test_database.h"

namespace ferry::postgres {
namespace {

const std::vector<std::string> kServiceRoles = {"ferry_repo_watcher", "ferry_planner", "ferry_deployer", "ferry_audit",
                                                 "ferry_notifier"};
// One table of each service's schema, its owner's login role.
const std::map<std::string, std::string> kTableOf = {{"ferry_repo_watcher", "repo_watcher.repositories"},
                                                     {"ferry_planner", "planner.plans"},
                                                     {"ferry_deployer", "deployer.deployments"},
                                                     {"ferry_audit", "audit.events"},
                                                     {"ferry_notifier", "notifier.deliveries"}};

std::vector<const MigrationSet*> AllSets() {
  return {&RepoWatcherMigrations(), &PlannerMigrations(), &DeployerMigrations(), &AuditMigrations(),
          &NotifierMigrations(), &AccessMigrations()};
}

// Runs `sql` as `role` on `url`; the error text, or "" when it succeeded.
std::string Try(const std::string& url, const std::string& sql) {
  try {
    pqxx::connection conn(url);
    pqxx::work txn(conn);
    txn.exec(sql);
    txn.commit();
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

std::string Scalar(const std::string& url, const std::string& sql) {
  pqxx::connection conn(url);
  pqxx::work txn(conn);
  return txn.exec1(sql)[0].as<std::string>();
}

class DbRolesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(db_.CreateFerryRoles());
    Migrated();
    // One audit event, as the service appends it (through the writer role).
    ASSERT_EQ(Try(db_.UrlAs("ferry_audit"), Event(1)), "");
  }

  // What every service's `--migrate-only` does, as ferry_migrator.
  void Migrated() {
    auto pool = ConnectionPool::Connect({.url = db_.UrlAs("ferry_migrator"), .size = 1});
    ASSERT_TRUE(pool.ok()) << pool.status();
    for (const MigrationSet* set : AllSets()) {
      absl::Status s = MigrateAsOwner(**pool, *set, "ferry_owner");
      ASSERT_TRUE(s.ok()) << set->schema << ": " << s;
    }
  }

  static std::string Event(int sequence, const std::string& action = "AUDIT_ACTION_PLAN_CREATED") {
    return absl::StrCat(
        "SET ROLE ferry_audit_writer; INSERT INTO audit.events (sequence, event_time, append_time, service, actor_id,"
        " action, application_id, environment_id, idempotency_key, prev_hash, hash) VALUES (",
        sequence, ", now(), now(), 'planner', 'alice', '", action, "', 'web', 'prod', 'k", sequence, "', '",
        std::string(64, '0'), "', '", std::string(64, 'a'), "')");
  }

  testing::TestDatabase db_;
};

TEST_F(DbRolesTest, EverySchemaIsOwnedByTheNologinOwner) {
  EXPECT_EQ(Scalar(db_.url(),
                   "SELECT string_agg(nspname || ':' || pg_get_userbyid(nspowner), ',' ORDER BY nspname) FROM "
                   "pg_namespace WHERE nspname IN ('repo_watcher','planner','deployer','audit','notifier','access')"),
            "access:ferry_owner,audit:ferry_owner,deployer:ferry_owner,notifier:ferry_owner,planner:ferry_owner,"
            "repo_watcher:ferry_owner");
  EXPECT_EQ(Scalar(db_.url(),
                   "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN "
                   "('repo_watcher','planner','deployer','audit','notifier','access') AND c.relowner <> 'ferry_owner'::regrole"),
            "0");
  EXPECT_EQ(Scalar(db_.url(), "SELECT rolcanlogin::text FROM pg_roles WHERE rolname = 'ferry_owner'"), "false");
  for (const std::string& role : kServiceRoles) {
    EXPECT_EQ(Scalar(db_.url(), absl::StrCat("SELECT (rolsuper OR rolcreaterole OR rolcreatedb)::text || "
                                             "pg_has_role('", role, "', 'ferry_owner', 'MEMBER')::text FROM pg_roles "
                                             "WHERE rolname = '", role, "'")),
              "falsefalse")
        << role;
  }
}

// Issue #23: autoanalyze's default (after a tenth of a table changed) ran at
// every 5 s visit of autovacuum during a commit touching 10,000
// applications. The tables each deployment changes are analyzed after
// changes of their own size, the outboxes after five times theirs. (Here, as
// the services' migrations leave them when run through the roles.)
TEST_F(DbRolesTest, TablesEveryDeploymentChangesAreNotAnalyzedAfterEachTenthChanged) {
  EXPECT_EQ(Scalar(db_.url(),
                   "SELECT string_agg(n.nspname || '.' || c.relname || ':' || coalesce(o.v, '-'), ',' "
                   "ORDER BY n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                   "LEFT JOIN LATERAL (SELECT substr(x, length('autovacuum_analyze_scale_factor=') + 1) AS v "
                   "FROM unnest(c.reloptions) x WHERE x LIKE 'autovacuum_analyze_scale_factor=%') o ON true "
                   "WHERE c.relkind = 'r' AND (n.nspname, c.relname) IN (('planner','plans'), ('planner','render_cache'), "
                   "('planner','outbox'), ('deployer','deployments'), ('deployer','steps'), "
                   "('deployer','applied_objects'), ('deployer','managed_apps'), ('deployer','outbox'), "
                   "('audit','events'), ('audit','deployed_intervals'))"),
            "audit.deployed_intervals:1,audit.events:1,deployer.applied_objects:1,deployer.deployments:1,"
            "deployer.managed_apps:1,deployer.outbox:5,deployer.steps:1,planner.outbox:5,planner.plans:1,"
            "planner.render_cache:1");
}

TEST_F(DbRolesTest, NoServiceRoleCanChangeOrUnprotectTheAuditLog) {
  for (const std::string& role : kServiceRoles) {
    SCOPED_TRACE(role);
    std::string url = db_.UrlAs(role);
    for (const std::string& sql :
         {std::string("DROP TRIGGER events_append_only ON audit.events"),
          std::string("ALTER TABLE audit.events DISABLE TRIGGER events_append_only"),
          std::string("ALTER TABLE audit.events ADD COLUMN x int"), std::string("DROP TABLE audit.events"),
          std::string("UPDATE audit.events SET message = 'forged'"), std::string("DELETE FROM audit.events"),
          std::string("TRUNCATE audit.events"), std::string("DROP TRIGGER checkpoints_append_only ON audit.checkpoints"),
          std::string("DROP FUNCTION audit.refuse_audit_change() CASCADE"),
          std::string("SET ROLE ferry_audit_writer; UPDATE audit.events SET message = 'forged'"),
          std::string("SET ROLE ferry_audit_writer; DELETE FROM audit.events"),
          std::string("SET ROLE ferry_owner; DROP TRIGGER events_append_only ON audit.events"),
          // The live intervals time travel reads (005_deployed_intervals.sql)
          // are the owner trigger's alone to write.
          std::string("UPDATE audit.deployed_intervals SET valid_to = NULL"),
          std::string("SET ROLE ferry_audit_writer; UPDATE audit.deployed_intervals SET valid_to = NULL"),
          std::string("SET ROLE ferry_audit_writer; DELETE FROM audit.deployed_intervals"),
          std::string("SET ROLE ferry_audit_writer; INSERT INTO audit.deployed_intervals (sequence, "
                      "application_id, environment_id, valid_from) VALUES (99, 'web', 'prod', now())"),
          std::string("SET ROLE ferry_audit_writer; TRUNCATE audit.deployed_intervals"),
          std::string("DROP TRIGGER events_record_deployed_interval ON audit.events"),
          std::string("ALTER TABLE audit.events DISABLE TRIGGER events_record_deployed_interval")}) {
      EXPECT_NE(Try(url, sql), "") << sql << " succeeded";
    }
  }
  // The row and the triggers are as they were.
  EXPECT_EQ(Scalar(db_.url(), "SELECT message || ':' || count(*) OVER () FROM audit.events"), ":1");
  EXPECT_EQ(Scalar(db_.url(), "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'audit.events'::regclass AND "
                              "NOT tgisinternal AND tgenabled = 'O'"),
            "3");
  EXPECT_EQ(Scalar(db_.url(), "SELECT count(*) FROM audit.deployed_intervals"), "0");
  // The append path still works for the audit service, and only for it.
  EXPECT_EQ(Try(db_.UrlAs("ferry_audit"), Event(2)), "");
  EXPECT_NE(Try(db_.UrlAs("ferry_planner"), Event(3)), "");
  // A DEPLOYMENT_SUCCEEDED appended by the audit service moves the live
  // intervals through the owner's trigger, which the service cannot write.
  EXPECT_EQ(Try(db_.UrlAs("ferry_audit"), Event(4, "AUDIT_ACTION_DEPLOYMENT_SUCCEEDED")), "");
  EXPECT_EQ(Scalar(db_.url(), "SELECT string_agg(sequence || ':' || application_id || '/' || environment_id || ':' ||"
                              " (valid_to IS NULL)::text, ',') FROM audit.deployed_intervals"),
            "4:web/prod:true");
  EXPECT_EQ(Scalar(db_.UrlAs("ferry_audit"), "SELECT count(*) FROM audit.deployed_intervals"), "1");
  EXPECT_NE(Try(db_.UrlAs("ferry_planner"), "INSERT INTO audit.events SELECT * FROM audit.events LIMIT 0"), "");
}

TEST_F(DbRolesTest, AServiceReachesItsOwnSchemaOnly) {
  for (const auto& [role, own] : kTableOf) {
    SCOPED_TRACE(role);
    std::string url = db_.UrlAs(role);
    EXPECT_EQ(Try(url, absl::StrCat("SELECT count(*) FROM ", own)), "");
    for (const auto& [other, table] : kTableOf) {
      if (other == role) continue;
      EXPECT_NE(Try(url, absl::StrCat("SELECT count(*) FROM ", table)), "") << role << " read " << table;
      EXPECT_NE(Try(url, absl::StrCat("DELETE FROM ", table)), "") << role << " deleted from " << table;
    }
    // The other services' outboxes too (their audit events before delivery).
    for (std::string outbox : {"repo_watcher.outbox", "planner.outbox", "deployer.outbox", "notifier.outbox"}) {
      if (absl::StartsWith(outbox, own.substr(0, own.find('.') + 1))) continue;
      EXPECT_NE(Try(url, absl::StrCat("SELECT count(*) FROM ", outbox)), "") << role << " read " << outbox;
    }
    // No DDL anywhere, its own schema included.
    std::string schema = own.substr(0, own.find('.'));
    EXPECT_NE(Try(url, absl::StrCat("CREATE TABLE ", schema, ".x (id int)")), "");
    EXPECT_NE(Try(url, "CREATE TABLE public.x (id int)"), "");
    EXPECT_NE(Try(url, "CREATE SCHEMA x"), "");
    EXPECT_NE(Try(url, absl::StrCat("INSERT INTO ", schema, ".schema_migrations VALUES (999, 'x')")), "");
  }
  // Rows of its own schema: written, changed, deleted.
  EXPECT_EQ(Try(db_.UrlAs("ferry_deployer"),
                "INSERT INTO deployer.pins (application_id, environment_id, pinned, record) VALUES ('a', 'e', true, "
                "'\\x00'); UPDATE deployer.pins SET pinned = false; DELETE FROM deployer.pins"),
            "");
}

TEST_F(DbRolesTest, OnlyThePlannerCreatesTokensAndEveryServiceReadsThem) {
  for (const std::string& role : kServiceRoles) {
    EXPECT_EQ(Try(db_.UrlAs(role), "SELECT count(*) FROM access.tokens"), "") << role;
    EXPECT_EQ(Try(db_.UrlAs(role), "UPDATE access.tokens SET last_used_at = now() WHERE false"), "") << role;
  }
  const std::string insert =
      "INSERT INTO access.tokens (id, token_hash, subject, created_by, created_at) VALUES ('0123456789ab', "
      "decode(repeat('00', 32), 'hex'), 'alice', '{}', now())";
  for (std::string role : {"ferry_repo_watcher", "ferry_deployer", "ferry_audit", "ferry_notifier"}) {
    EXPECT_NE(Try(db_.UrlAs(role), insert), "") << role;
    EXPECT_NE(Try(db_.UrlAs(role), "UPDATE access.tokens SET revoked_at = NULL WHERE false"), "") << role;
  }
  EXPECT_EQ(Try(db_.UrlAs("ferry_planner"), insert), "");
  EXPECT_NE(Try(db_.UrlAs("ferry_planner"), "DELETE FROM access.tokens"), "");
}

// A service starting with its login role finds its schema migrated and
// changes nothing; when it is not, the error says what to run.
TEST_F(DbRolesTest, ALoginRoleStartsOnAMigratedSchemaAndCannotMigrate) {
  for (const auto& [role, set] : std::map<std::string, const MigrationSet*>{
           {"ferry_repo_watcher", &RepoWatcherMigrations()},
           {"ferry_planner", &PlannerMigrations()},
           {"ferry_deployer", &DeployerMigrations()},
           {"ferry_audit", &AuditMigrations()},
           {"ferry_notifier", &NotifierMigrations()}}) {
    auto pool = ConnectionPool::Connect({.url = db_.UrlAs(role), .size = 1});
    ASSERT_TRUE(pool.ok()) << pool.status();
    EXPECT_TRUE(Migrate(**pool, *set).ok()) << role;
    EXPECT_TRUE(Migrate(**pool, AccessMigrations()).ok()) << role;
    MigrationSet newer = *set;
    newer.migrations.push_back({999, "999_new.sql", "CREATE TABLE newer (id int)"});
    absl::Status s = Migrate(**pool, newer);
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << role << ": " << s;
    EXPECT_NE(s.message().find("--migrate-only"), absl::string_view::npos) << s;
  }
}

// Running the roles script and the migrations again changes nothing and
// fails nowhere (make up, the chart and compose run both at every start).
TEST_F(DbRolesTest, RolesAndMigrationsRunAgain) {
  ASSERT_TRUE(db_.CreateFerryRoles());
  Migrated();
  EXPECT_EQ(Try(db_.UrlAs("ferry_audit"), Event(2)), "");
}

// A database a single superuser migrated (the one-URL mode, every Ferry
// before per-service roles) moves to the roles: db-roles.sql hands its
// schemas to ferry_owner, and the migrator then grants as usual.
TEST(DbRolesUpgradeTest, ADatabaseMigratedByOneSuperuserMovesToTheRoles) {
  testing::TestDatabase db;
  {
    auto pool = db.Pool(1);
    for (const MigrationSet* set : AllSets()) ASSERT_TRUE(Migrate(*pool, *set).ok()) << set->schema;
  }
  ASSERT_TRUE(db.CreateFerryRoles());
  auto pool = ConnectionPool::Connect({.url = db.UrlAs("ferry_migrator"), .size = 1});
  ASSERT_TRUE(pool.ok()) << pool.status();
  for (const MigrationSet* set : AllSets()) {
    absl::Status s = MigrateAsOwner(**pool, *set, "ferry_owner");
    ASSERT_TRUE(s.ok()) << set->schema << ": " << s;
  }
  EXPECT_EQ(Scalar(db.url(), "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
                             "n.nspname IN ('repo_watcher','planner','deployer','audit','notifier','access') AND "
                             "c.relowner <> 'ferry_owner'::regrole"),
            "0");
  EXPECT_EQ(Try(db.UrlAs("ferry_planner"), "SELECT count(*) FROM planner.plans"), "");
  EXPECT_NE(Try(db.UrlAs("ferry_planner"), "DROP TRIGGER events_append_only ON audit.events"), "");
}

TEST(DbRolesOwnerTest, MigratingAsAMissingOrUngrantedOwnerSaysWhatToRun) {
  testing::TestDatabase db;
  auto pool = db.Pool(1);
  absl::Status s = MigrateAsOwner(*pool, PlannerMigrations(), "ferry_no_such_owner");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find("db-roles.sql"), absl::string_view::npos) << s;
}

}  // namespace
}  // namespace ferry::postgres
