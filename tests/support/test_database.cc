#include "tests/support/test_database.h"

#include <unistd.h>

#include <csignal>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "common/concurrency/mutex.h"

namespace ferry::testing {
namespace {

// As the services do (common/server): a test's HTTP client (cpp-httplib
// 0.11 sends without MSG_NOSIGNAL) writing a body that the server refuses
// early (413) and closes on must see EPIPE, not die of SIGPIPE.
const bool kSigpipeIgnored = [] {
  std::signal(SIGPIPE, SIG_IGN);
  return true;
}();

std::string ReadAdminUrl() {
  const char* state = std::getenv("FERRY_TEST_PG_STATE");
  std::string path = absl::StrCat(state != nullptr ? state : FERRY_TEST_PG_STATE_DEFAULT, "/url");
  std::ifstream in(path);
  std::string url;
  if (!std::getline(in, url) || url.empty()) {
    std::cerr << "no test PostgreSQL: " << path
              << " is missing. Run through ctest (the postgres fixture starts one), or run "
                 "tests/support/pg-fixture start <dir> and set FERRY_TEST_PG_STATE=<dir>.\n";
    std::abort();
  }
  return url;
}

std::string RandomSuffix() {
  std::random_device rd;
  std::mt19937_64 gen(rd() ^ static_cast<uint64_t>(getpid()));
  return absl::StrCat(getpid(), "_", gen() % 1000000000);
}

}  // namespace

TestDatabase::TestDatabase() : admin_url_(ReadAdminUrl()), name_(absl::StrCat("ferry_test_", RandomSuffix())) {
  pqxx::connection conn(admin_url_);
  pqxx::nontransaction txn(conn);
  txn.exec0(absl::StrCat("CREATE DATABASE ", txn.quote_name(name_)));
  url_ = absl::StrCat(admin_url_.substr(0, admin_url_.rfind('/') + 1), name_);
}

TestDatabase::~TestDatabase() {
  try {
    pqxx::connection conn(admin_url_);
    pqxx::nontransaction txn(conn);
    txn.exec0(absl::StrCat("DROP DATABASE IF EXISTS ", txn.quote_name(name_), " WITH (FORCE)"));
  } catch (const std::exception& e) {
    std::cerr << "could not drop " << name_ << ": " << e.what() << "\n";
  }
}

bool TestDatabase::CreateFerryRoles() const {
  std::string command = absl::StrCat("psql -X -q -v ON_ERROR_STOP=1 -d '", url_, "' -f '", FERRY_TEST_SOURCE_DIR,
                                     "/helm/ferry/files/db-roles.sql' 2>&1");
  std::string output;
  // Roles are cluster-wide and tests run in parallel: a run that races
  // another's first CREATE ROLE or GRANT may fail once ("tuple concurrently
  // updated"); the script is idempotent, so try again.
  for (int attempt = 0; attempt < 5; ++attempt) {
    output.clear();
    FILE* p = popen(command.c_str(), "r");
    if (p == nullptr) break;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) output.append(buf, n);
    if (pclose(p) == 0) return true;
    usleep(200000 * (attempt + 1));
  }
  ADD_FAILURE() << "db-roles.sql failed: " << output;
  return false;
}

std::string TestDatabase::UrlAs(const std::string& role) const {
  // The fixture's URLs are postgresql://postgres@host:port/db.
  std::string url = url_;
  size_t at = url.find("postgres@");
  if (at != std::string::npos) url.replace(at, std::string("postgres").size(), role);
  return url;
}

std::set<std::string> ColumnsWithoutStatistics(postgres::ConnectionPool& pool, const std::string& table) {
  absl::StatusOr<std::set<std::string>> out = pool.RunStatementWithResult<std::set<std::string>>(
      [&](pqxx::transaction_base& txn) -> absl::StatusOr<std::set<std::string>> {
        std::set<std::string> columns;
        for (const auto& row : txn.exec_params("SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass "
                                               "AND attnum > 0 AND NOT attisdropped AND attstattarget = 0",
                                               table))
          columns.insert(row[0].as<std::string>());
        return columns;
      });
  if (!out.ok()) {
    ADD_FAILURE() << table << ": " << out.status();
    return {};
  }
  return *std::move(out);
}

std::unique_ptr<postgres::ConnectionPool> TestDatabase::Pool(int size) const {
  auto pool = postgres::ConnectionPool::Connect({.url = url_, .size = size, .connect_timeout = absl::ZeroDuration()});
  if (!pool.ok()) {
    std::cerr << pool.status() << "\n";
    std::abort();
  }
  return std::move(*pool);
}

namespace {

// Directories made by MakeTempDir in this process, removed when it exits
// (each test runs in a process of its own) unless a test failed: then they
// are kept, and named, for a look at what the test left.
struct TempDirs {
  ferry::Mutex mu;
  std::vector<std::string> paths ABSL_GUARDED_BY(mu);
  ~TempDirs() {
    const ::testing::UnitTest* unit = ::testing::UnitTest::GetInstance();
    const bool failed = unit != nullptr && unit->Failed();
    for (const std::string& p : paths) {
      if (failed) {
        std::cerr << "kept for inspection: " << p << "\n";
      } else {
        std::error_code ec;
        std::filesystem::remove_all(p, ec);
      }
    }
  }
};

TempDirs& AllTempDirs() {
  static TempDirs dirs;
  return dirs;
}

}  // namespace

std::string MakeTempDir(const std::string& prefix) {
  std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + ".XXXXXX")).string();
  if (mkdtemp(tmpl.data()) == nullptr) {
    std::cerr << "mkdtemp failed\n";
    std::abort();
  }
  TempDirs& dirs = AllTempDirs();
  ferry::MutexLock lock(&dirs.mu);
  dirs.paths.push_back(tmpl);
  return tmpl;
}

}  // namespace ferry::testing
