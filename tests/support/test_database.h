#pragma once

#include <memory>
#include <set>
#include <string>

#include "common/postgres/connection_pool.h"

namespace ferry::testing {

// A fresh, uniquely named database in the test run's throwaway PostgreSQL
// (started by the `postgres` ctest fixture, see tests/support/pg-fixture).
// Dropped on destruction. Tests needing it carry the "postgres" label.
class TestDatabase {
 public:
  // Creates the database; aborts the test binary with a clear message when
  // the fixture is not running.
  TestDatabase();
  ~TestDatabase();

  // Superuser URL of this database.
  const std::string& url() const { return url_; }
  // Superuser URL of the cluster's maintenance database.
  const std::string& admin_url() const { return admin_url_; }
  const std::string& name() const { return name_; }

  // A pool on this database (superuser).
  std::unique_ptr<postgres::ConnectionPool> Pool(int size = 4) const;

  // Runs helm/ferry/files/db-roles.sql on this database with psql, as make
  // up and the chart do: Ferry's owner, migrator and per-service roles
  // (cluster-wide: made once, then kept) and this database's grants. The
  // test cluster trusts local connections, so the roles need no passwords.
  // Fails the test (ADD_FAILURE) and returns false when psql fails.
  bool CreateFerryRoles() const;
  // The URL of this database for the login role `role` (e.g. ferry_planner).
  std::string UrlAs(const std::string& role) const;

 private:
  std::string admin_url_;
  std::string name_;
  std::string url_;
};

// The columns of `table` (schema-qualified) that ANALYZE keeps no
// statistics for (SET STATISTICS 0); empty, with a test failure, when the
// catalog cannot be read.
std::set<std::string> ColumnsWithoutStatistics(postgres::ConnectionPool& pool, const std::string& table);

// A fresh temporary directory, removed when the test process exits (kept,
// and named on stderr, when a test failed).
std::string MakeTempDir(const std::string& prefix);

}  // namespace ferry::testing
