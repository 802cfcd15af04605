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
absl::Status Migrate(ConnectionPool& pool, const MigrationSet& set);

}  // namespace ferry::postgres
