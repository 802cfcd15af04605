#include "common/postgres/migrator.h"

#include <set>

#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "common/logging/logger.h"
#include "common/postgres/pq_status.h"

namespace ferry::postgres {
namespace {

// Versions in the set that the database lacks, or the error of a database
// ahead of this binary. Reads only: runs with the login role's privileges.
absl::Status CheckNewest(const MigrationSet& set, int newest) {
  int known = set.migrations.empty() ? 0 : set.migrations.back().version;
  if (newest > known) {
    return absl::FailedPreconditionError(absl::StrCat("schema ", set.schema, " is at version ", newest,
                                                      " but this binary knows only up to ", known));
  }
  return absl::OkStatus();
}

// True when every migration of `set` is recorded (nothing to do); false when
// one is missing or the schema cannot be read (the migrating path then runs,
// and reports what is wrong).
absl::StatusOr<bool> UpToDate(ConnectionPool& pool, const MigrationSet& set) {
  bool ahead = false;
  int newest = 0;
  absl::StatusOr<bool> up = pool.RunInTransactionWithResult<bool>([&](pqxx::work& txn) -> absl::StatusOr<bool> {
    const std::string table = absl::StrCat(txn.quote_name(set.schema), ".schema_migrations");
    // has_schema_privilege first: to_regclass raises on a schema the role may not use.
    pqxx::row present = txn.exec_params1(
        "SELECT CASE WHEN has_schema_privilege(n.oid, 'USAGE') THEN to_regclass($2) IS NOT NULL ELSE false END "
        "FROM pg_namespace n WHERE n.nspname = $1 UNION ALL SELECT false LIMIT 1",
        set.schema, table);
    if (!present[0].as<bool>()) return false;
    std::set<int> done;
    for (const auto& row : txn.exec(absl::StrCat("SELECT version FROM ", table))) {
      int v = row[0].as<int>();
      done.insert(v);
      newest = std::max(newest, v);
    }
    ahead = !CheckNewest(set, newest).ok();
    for (const Migration& m : set.migrations) {
      if (done.count(m.version) == 0) return false;
    }
    return true;
  });
  if (!up.ok()) return false;  // e.g. no SELECT on schema_migrations: let the migrating path say why
  if (ahead) return CheckNewest(set, newest);
  return *up;
}

absl::Status MigrateLocked(ConnectionPool& pool, const MigrationSet& set, const std::string& owner_role) {
  std::vector<std::string> applied_now;
  absl::Status status = pool.RunInTransaction([&](pqxx::work& txn) -> absl::Status {
    applied_now.clear();
    txn.exec_params("SELECT pg_advisory_xact_lock(hashtext('ferry.migrate'), hashtext($1))", set.schema);
    if (!owner_role.empty()) {
      pqxx::row can = txn.exec_params1(
          "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1), "
          "EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AND pg_has_role(current_user, $1, 'MEMBER')",
          owner_role);
      if (!can[0].as<bool>() || !can[1].as<bool>()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "cannot migrate schema ", set.schema, " as the owner role ", owner_role, ": the role ",
            can[0].as<bool>() ? "is not granted to the login role of the migration URL"
                              : "does not exist",
            "; create the roles first with helm/ferry/files/db-roles.sql (docs/operations.md)"));
      }
      // Everything created from here on belongs to the owner, not to whoever
      // logged in; the services' login roles get only set.privileges.
      txn.exec0(absl::StrCat("SET LOCAL ROLE ", txn.quote_name(owner_role)));
    }
    const std::string schema = txn.quote_name(set.schema);
    txn.exec0(absl::StrCat("CREATE SCHEMA IF NOT EXISTS ", schema));
    txn.exec0(absl::StrCat("CREATE TABLE IF NOT EXISTS ", schema,
                           ".schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
                           "applied_at timestamptz NOT NULL DEFAULT now())"));
    // Migration files use unqualified names: they land in the service's schema.
    txn.exec0(absl::StrCat("SET LOCAL search_path TO ", schema, ", public"));
    std::set<int> done;
    int newest = 0;
    for (const auto& row : txn.exec(absl::StrCat("SELECT version FROM ", schema, ".schema_migrations"))) {
      int v = row[0].as<int>();
      done.insert(v);
      newest = std::max(newest, v);
    }
    if (absl::Status ahead = CheckNewest(set, newest); !ahead.ok()) return ahead;
    for (const Migration& m : set.migrations) {
      if (done.count(m.version) > 0) continue;
      try {
        txn.exec(m.sql);
      } catch (const std::exception& e) {
        return StatusFromException(e, absl::StrCat("migration ", set.schema, "/", m.name));
      }
      txn.exec_params(absl::StrCat("INSERT INTO ", schema, ".schema_migrations (version, name) VALUES ($1, $2)"),
                      m.version, m.name);
      applied_now.push_back(m.name);
    }
    if (!owner_role.empty() && !set.privileges.empty()) {
      try {
        txn.exec(set.privileges);
      } catch (const std::exception& e) {
        return StatusFromException(e, absl::StrCat("privileges of schema ", set.schema));
      }
    }
    return absl::OkStatus();
  });
  if (status.code() == absl::StatusCode::kPermissionDenied && owner_role.empty()) {
    return absl::PermissionDeniedError(absl::StrCat(
        status.message(), " (schema ", set.schema,
        " needs migrating and this login role may not: run the service once with --migrate-only and the "
        "migration role's URL, see docs/operations.md)"));
  }
  if (status.ok() && !applied_now.empty()) {
    logging::Info("schema migrated", {{"schema", set.schema}, {"applied", applied_now}});
  }
  return status;
}

}  // namespace

absl::Status Migrate(ConnectionPool& pool, const MigrationSet& set) {
  absl::StatusOr<bool> up = UpToDate(pool, set);
  if (!up.ok()) return up.status();
  if (*up) return absl::OkStatus();
  return MigrateLocked(pool, set, "");
}

absl::Status MigrateAsOwner(ConnectionPool& pool, const MigrationSet& set, const std::string& owner_role) {
  if (owner_role.empty()) return absl::InvalidArgumentError("MigrateAsOwner needs an owner role");
  return MigrateLocked(pool, set, owner_role);
}

}  // namespace ferry::postgres
