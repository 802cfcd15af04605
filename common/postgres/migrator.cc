#include "common/postgres/migrator.h"

#include <set>

#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "common/logging/logger.h"
#include "common/postgres/pq_status.h"

namespace ferry::postgres {

absl::Status Migrate(ConnectionPool& pool, const MigrationSet& set) {
  std::vector<std::string> applied_now;
  absl::Status status = pool.RunInTransaction([&](pqxx::work& txn) -> absl::Status {
    applied_now.clear();
    txn.exec_params("SELECT pg_advisory_xact_lock(hashtext('ferry.migrate'), hashtext($1))", set.schema);
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
    int known = set.migrations.empty() ? 0 : set.migrations.back().version;
    if (newest > known) {
      return absl::FailedPreconditionError(absl::StrCat("schema ", set.schema, " is at version ", newest,
                                                        " but this binary knows only up to ", known));
    }
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
    return absl::OkStatus();
  });
  if (status.ok() && !applied_now.empty()) {
    logging::Info("schema migrated", {{"schema", set.schema}, {"applied", applied_now}});
  }
  return status;
}

}  // namespace ferry::postgres
