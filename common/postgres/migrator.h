#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/postgres/connection_pool.h"

namespace ferry::postgres {

// One numbered SQL file of a service's schema/ folder.
struct Migration {
  int version;
  std::string name;
  std::string sql;
};

// A service's schema and its migrations in version order. Built into each
// service binary from services/<service>/schema/NNN_*.sql by CMake.
struct MigrationSet {
  std::string schema;
  std::vector<Migration> migrations;
  // The schema's grants to the services' login roles (schema/privileges.sql,
  // idempotent), applied after the migrations by MigrateAsOwner only. Empty
  // when the schema has none.
  std::string privileges;
};

// Brings `set.schema` up to date: creates the schema and its
// schema_migrations table if needed and applies, in one transaction, every
// migration not yet recorded there. The transaction holds an advisory lock
// for the schema, so replicas that start together migrate exactly once; the
// later ones wait and then find nothing to do.
//
// Returns FAILED_PRECONDITION when the database holds a version newer than
// this binary knows (an older binary against a newer schema), and the
// translated database error, naming the file, when a migration fails.
//
// When every migration is already recorded it changes nothing and takes no
// lock: a service whose login role may only read schema_migrations (the
// per-service roles of docs/operations.md) starts against a schema someone
// else migrated. When it must migrate and may not, the error says to run
// `--migrate-only` with the owner's URL.
absl::Status Migrate(ConnectionPool& pool, const MigrationSet& set);

// Migrate as the NOLOGIN role `owner_role` (SET ROLE, so everything created
// is the owner's, whoever logs in), then applies `set.privileges`: the
// `--migrate-only` step of the per-service roles (docs/operations.md). The
// login role must be a member of `owner_role`; FAILED_PRECONDITION naming
// the role when it is missing or not granted (run
// helm/ferry/files/db-roles.sql first).
absl::Status MigrateAsOwner(ConnectionPool& pool, const MigrationSet& set, const std::string& owner_role);

}  // namespace ferry::postgres
